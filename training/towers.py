"""The two towers: a query tower for (user, recent history) and a candidate tower for items.

Ids are looked up in vocabularies built from the training data, each with one out-of-vocabulary
bucket, so an id never seen in training (a new user or item at serving time) maps to a
learned "unknown" embedding instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import HISTORY_PADDING


class QueryTower(tf.keras.Model):
    """Embeds a user and their recent items, most recent first.

    The most recent item gets its own slot next to the masked mean of the whole history:
    what a user does next depends most on what they just did, and a plain average would
    blur that signal with everything older.
    """

    def __init__(
        self, user_ids: Sequence[str], item_ids: Sequence[str], dim: int, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.user_lookup = tf.keras.layers.StringLookup(vocabulary=list(user_ids), mask_token=None)
        self.user_embedding = tf.keras.layers.Embedding(len(user_ids) + 1, dim)
        # Index 0 is the padding mask, index 1 the out-of-vocabulary bucket.
        self.item_lookup = tf.keras.layers.StringLookup(
            vocabulary=list(item_ids), mask_token=HISTORY_PADDING
        )
        self.history_embedding = tf.keras.layers.Embedding(len(item_ids) + 2, dim)
        self.projection = tf.keras.Sequential(
            [tf.keras.layers.Dense(2 * dim, activation="relu"), tf.keras.layers.Dense(dim)]
        )

    def call(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        user = self.user_embedding(self.user_lookup(features[spec.USER_ID]))
        history_ids = self.item_lookup(features[spec.HISTORY])
        mask = tf.cast(tf.not_equal(history_ids, 0), tf.float32)[:, :, tf.newaxis]
        history = self.history_embedding(history_ids) * mask
        latest = history[:, 0, :]
        mean = tf.reduce_sum(history, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return self.projection(tf.concat([user, latest, mean], axis=1))


class CandidateTower(tf.keras.Model):
    """Embeds an item id."""

    def __init__(self, item_ids: Sequence[str], dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lookup = tf.keras.layers.StringLookup(vocabulary=list(item_ids), mask_token=None)
        self.embedding = tf.keras.layers.Embedding(len(item_ids) + 1, dim)

    def call(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.embedding(self.lookup(item_ids))
