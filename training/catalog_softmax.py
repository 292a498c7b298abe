"""The exact softmax: every query scored against every item of the catalog.

A sampled softmax (:mod:`.retrieval_loss`) sees the batch's targets and a few sampled items
per query, and corrects the bias this brings with logQ; what it cannot correct is that a query
never meets most of the items it will be ranked against at serving. The exact softmax has no
sampling bias and no sampling noise, and it trains the ranking that full-ranking evaluation
and serving measure. Its cost is one ``[queries, items]`` matmul per step, which catalogs of
tens of thousands of items afford; larger ones train with the sampled softmax
(``training.softmax``, ``training.full_softmax_max_items``).

Rows of the vocabulary before ``first_item`` (padding, unknown, start) are never candidates.
"""

from __future__ import annotations

import tensorflow as tf

from streamrec.training.retrieval_loss import NOT_A_CANDIDATE, softmax_loss, weighted_mean
from streamrec.training.seen_items import masked


class CatalogSoftmaxLoss(tf.keras.layers.Layer):
    def __init__(self, temperature: float, first_item: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.temperature = temperature
        self.first_item = first_item

    def call(
        self,
        queries: tf.Tensor,
        targets: tf.Tensor,
        weights: tf.Tensor,
        table: tf.Tensor,
        seen: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """Weighted mean loss of ``queries`` [n, d] against every row of ``table`` [items, d];
        ``targets`` [n] are row indices, and positions with weight 0 (padding) do not count.
        ``seen`` (query rows [pairs], item rows [pairs]) are not negatives of those queries
        (:mod:`.seen_items`)."""
        queries = tf.cast(queries, tf.float32)
        logits = tf.matmul(queries / self.temperature, tf.cast(table, tf.float32), transpose_b=True)
        rows = tf.range(tf.shape(table)[0])
        not_candidate = tf.where(rows < self.first_item, NOT_A_CANDIDATE, 0.0)
        logits += not_candidate[tf.newaxis, :]
        if seen is not None:
            logits = masked(logits, seen[0], seen[1], NOT_A_CANDIDATE)
        return weighted_mean(softmax_loss(logits, targets), weights, tf.reduce_sum(weights))
