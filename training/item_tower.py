"""The candidate tower: an item's vector from its id and, where the catalog has them, its
categories.

The vector is the id's embedding plus the mean of its categories' embeddings. Both towers
read it (the query tower for the items of a history, tied as in SASRec), so what the model
learns about a category carries to every item in it: an item seen a handful of times starts
near its category-mates rather than at its random initialisation. The category rows are
constants of the layer, so an exported model carries them and serving needs no catalog.
"""

from __future__ import annotations

import tensorflow as tf

from streamrec.training.item_features import ItemFeatures


class ItemTower(tf.keras.layers.Layer):
    def __init__(self, features: ItemFeatures, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = len(features.rows)
        self.category_names = list(features.categories)
        self.ids = tf.keras.layers.Embedding(self.size, dim)
        self.category_rows = tf.constant(features.rows) if features.present else None
        self.categories = (
            tf.keras.layers.Embedding(len(features.categories) + 1, dim)
            if features.present
            else None
        )

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        vectors = self.ids(ids)
        if self.categories is None:
            return vectors
        rows = tf.gather(self.category_rows, ids)  # [..., MAX_CATEGORIES], 0: none
        present = tf.cast(rows > 0, vectors.dtype)[..., tf.newaxis]
        summed = tf.reduce_sum(self.categories(rows) * present, axis=-2)
        return vectors + summed / tf.maximum(tf.reduce_sum(present, axis=-2), 1.0)

    def table(self) -> tf.Tensor:
        """Every row's vector: ``[size, dim]``, the candidates of the loss and of serving."""
        return self.call(tf.range(self.size))
