"""Causal sequence encoders: each position's output reads only that position and earlier ones.

All three take item embeddings ``[batch, time, dim]`` with a mask ``[batch, time]`` (True at
real items) and return ``[batch, time, dim]``; position ``t`` is the query after the first
``t + 1`` items. Trained this way every position of a window is a query, and served the same
way by reading the position of the newest item.

- :class:`MeanEncoder`: the running mean of the items, beside the newest item (the tower
  streamrec started with, kept as the reference);
- :class:`GruEncoder`: a GRU over the items, recurrent and so causal by construction;
- :class:`TransformerEncoder`: pre-norm self-attention blocks under a causal mask (SASRec).
"""

from __future__ import annotations

import tensorflow as tf

from streamrec.training.dropout import StatelessDropout


class MeanEncoder(tf.keras.layers.Layer):
    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.projection = tf.keras.Sequential(
            [tf.keras.layers.Dense(2 * dim, activation="relu"), tf.keras.layers.Dense(dim)]
        )

    def call(self, items: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        weights = tf.cast(mask, items.dtype)[:, :, tf.newaxis]
        running = tf.cumsum(items * weights, axis=1) / tf.maximum(tf.cumsum(weights, axis=1), 1.0)
        return self.projection(tf.concat([running, items], axis=-1))


class GruEncoder(tf.keras.layers.Layer):
    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gru = tf.keras.layers.GRU(dim, return_sequences=True)
        self.projection = tf.keras.layers.Dense(dim)

    def call(self, items: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.projection(self.gru(items, mask=mask, training=training))


class TransformerEncoder(tf.keras.layers.Layer):
    def __init__(
        self, dim: int, layers: int = 2, heads: int = 2, dropout: float = 0.2, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.blocks = [_Block(dim, heads, dropout) for _ in range(layers)]
        self.norm = tf.keras.layers.LayerNormalization()

    def call(self, items: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        hidden = items
        for block in self.blocks:
            hidden = block(hidden, mask, training=training)
        return self.norm(hidden)


class _Block(tf.keras.layers.Layer):
    def __init__(self, dim: int, heads: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attention_norm = tf.keras.layers.LayerNormalization()
        self.attention = _Attention(heads, dim // heads, dropout=dropout)
        self.feed_norm = tf.keras.layers.LayerNormalization()
        self.feed = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(2 * dim, activation="gelu"),
                StatelessDropout(dropout),
                tf.keras.layers.Dense(dim),
            ]
        )

    def call(self, hidden: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        normed = self.attention_norm(hidden)
        # Causal, and no query attends to padding; the first position is never padding.
        keys = tf.cast(mask, tf.bool)[:, tf.newaxis, :]
        time = tf.shape(hidden)[1]
        lower = tf.cast(tf.linalg.band_part(tf.ones([time, time]), -1, 0), tf.bool)
        attend = tf.logical_and(lower[tf.newaxis], keys)
        hidden = hidden + self.attention(normed, normed, attention_mask=attend, training=training)
        return hidden + self.feed(self.feed_norm(hidden), training=training)


class _Attention(tf.keras.layers.MultiHeadAttention):
    """Keras's multi-head attention, dropping attention weights with :class:`StatelessDropout`."""

    def _build_attention(self, rank: int) -> None:
        super()._build_attention(rank)
        self._dropout_layer = StatelessDropout(self._dropout)


def sequence_encoder(
    name: str, dim: int, blocks: int = 2, heads: int = 2, dropout: float = 0.2
) -> tf.keras.layers.Layer:
    """The encoder ``name`` (mean, gru or transformer); the sizes apply to the transformer."""
    if name == "transformer":
        return TransformerEncoder(dim, blocks, heads, dropout)
    return {"mean": MeanEncoder, "gru": GruEncoder}[name](dim)
