"""The two towers over one item vocabulary: a causal query tower and the candidate tower.

Item ids are looked up once, in :class:`ItemVocabulary`: index 0 is padding, 1 any unknown
item, 2 the start token, then the known items. Both towers read the same embedding table
(tied input and output embeddings, as in SASRec): an item is what it predicts.

The query tower reads a sequence that starts with the start token, so the start position is a
query too: the learned answer for a user with no history yet. Training feeds whole windows
(:mod:`.sequences`) and reads every position; serving feeds the history most recent first, as
the export layout's signature defines, reverses it into time order and reads the position of
the newest item.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from streamrec.infra.contracts.export_layout import HISTORY_PADDING
from streamrec.training.sequence_encoders import ENCODERS

START = "[start]"
FIRST_ITEM = 3  # padding, unknown, start


class ItemVocabulary(tf.keras.layers.Layer):
    def __init__(self, item_ids: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.item_ids = list(item_ids)
        self.lookup = tf.keras.layers.StringLookup(
            vocabulary=[START, *self.item_ids], mask_token=HISTORY_PADDING
        )

    @property
    def size(self) -> int:
        return len(self.item_ids) + FIRST_ITEM

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return self.lookup(ids)


class SequenceQueryTower(tf.keras.Model):
    def __init__(
        self,
        vocabulary: ItemVocabulary,
        item_tower: tf.keras.layers.Layer,
        history_length: int,
        encoder: str,
        dim: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocabulary = vocabulary
        self.item_tower = item_tower  # shared with the candidates: tied embeddings
        self.positions = tf.keras.layers.Embedding(history_length + 1, dim)
        self.encoder = ENCODERS[encoder](dim)
        self.dropout = tf.keras.layers.Dropout(0.2)

    def encode(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``ids`` [batch, time] item indices, start token first -> [batch, time, dim]."""
        positions = tf.range(tf.shape(ids)[1])
        items = self.item_tower(ids) + self.positions(positions)[tf.newaxis]
        return self.encoder(self.dropout(items, training=training), ids != 0, training=training)

    def call(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Serving: ``history`` [batch, history_length] most recent first -> [batch, dim]."""
        ids = self.vocabulary(features["history"])
        counts = tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)
        in_time_order = tf.reverse_sequence(ids, counts, seq_axis=1, batch_axis=0)
        start = tf.fill([tf.shape(ids)[0], 1], tf.constant(2, ids.dtype))
        outputs = self.encode(tf.concat([start, in_time_order], axis=1), training=training)
        return tf.gather(outputs, counts, axis=1, batch_dims=1)
