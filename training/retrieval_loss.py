"""The retrieval loss: softmax over in-batch candidates, corrected for how they were sampled.

Every other positive in a batch is a negative for each query, which is cheap and scales with
the batch, but popular items are in batches far more often than the catalog would suggest, so
without correction they are over-penalised. With logQ correction (Yi et al., 2019) each
in-batch candidate's logit is lowered by the log of its sampling probability (its frequency);
``extra_negatives`` adds items drawn uniformly from the catalog (mixed negative sampling, Yang
et al., 2020), corrected by theirs. Logits are divided by a temperature.

Each distinct target of a batch is one candidate column (``unique_candidates``): a popular
item that is the target of many queries is scored once, not once per query, and its logQ
correction is the log of its probability to be in the batch at all. The logits shrink from
queries x queries to queries x distinct items, which is most of a step's cost. Under XLA, which
needs static shapes, every target is a column instead: padding positions stay in the batch,
masked by ``weights`` as queries and as candidates, and accidental hits (a candidate that is the
query's own target item, at another position) are masked.

Candidates are asked for by index, never as the whole table: a step needs the vectors of its
targets and samples only, and computing every item's (catalog features included) each step
would cost as much as the catalog is large.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from streamrec.training.seen_items import masked

Candidates = Callable[[tf.Tensor], tf.Tensor]  # item indices [k] -> candidate vectors [k, d]
NOT_A_CANDIDATE = -1e9  # exp() of it minus any real logit is 0, without float32.min's overflow


class RetrievalLoss(tf.keras.layers.Layer):
    def __init__(
        self,
        log_frequency: tf.Tensor,
        temperature: float = 0.1,
        extra_negatives: int = 0,
        logq: bool = True,
        first_item: int = 0,  # rows before it (padding, unknown, start) are never sampled
        unique_candidates: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.unique_candidates = unique_candidates
        self.log_frequency = tf.constant(log_frequency, tf.float32)  # per item index
        self.temperature = temperature
        self.extra_negatives = extra_negatives
        self.logq = logq
        self.first_item = first_item

    def call(
        self,
        queries: tf.Tensor,
        targets: tf.Tensor,
        weights: tf.Tensor,
        candidates: Candidates,
        seen: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """Weighted mean loss of ``queries`` [n, d] whose positives are item indices ``targets``
        [n]; positions with weight 0 (padding) are neither queries nor candidates. ``seen``
        (query rows [pairs], item indices [pairs]) are not negatives of those queries
        (:mod:`.seen_items`; with distinct candidates only: under XLA's static shapes every
        in-batch candidate stays)."""
        queries = tf.cast(queries, tf.float32)  # float32 logits under mixed precision too
        if self.unique_candidates:
            return self._distinct(queries, targets, weights, candidates, seen)
        positives = tf.cast(candidates(targets), tf.float32)
        logits = tf.matmul(queries, positives, transpose_b=True) / self.temperature
        count = tf.reduce_sum(weights)
        if self.logq:
            log_q = tf.gather(self.log_frequency, targets) + tf.math.log(tf.maximum(count, 1.0))
            logits -= log_q[tf.newaxis, :]
        same = tf.equal(targets[:, tf.newaxis], targets[tf.newaxis, :])
        n = tf.shape(targets)[0]
        accidental = tf.logical_and(same, tf.logical_not(tf.eye(n, dtype=tf.bool)))
        not_candidate = tf.logical_or(accidental, (weights == 0)[tf.newaxis, :])
        logits = tf.where(not_candidate, tf.float32.min, logits)
        if self.extra_negatives:
            logits = tf.concat([logits, self._uniform_logits(queries, targets, candidates)], axis=1)
        return weighted_mean(softmax_loss(logits, tf.range(n)), weights, count)

    def _distinct(
        self,
        queries: tf.Tensor,
        targets: tf.Tensor,
        weights: tf.Tensor,
        candidates: Candidates,
        seen: tuple[tf.Tensor, tf.Tensor] | None,
    ) -> tf.Tensor:
        items, column = tf.unique(targets)  # column: each query's target among the items
        count = tf.reduce_sum(weights)
        # The logits [queries, items] are a step's largest tensor, and each pass over them
        # costs about as much as the matmul that makes them: the temperature divides the
        # queries instead, and logQ and the padding column are one added row.
        logits = tf.matmul(
            queries / self.temperature, tf.cast(candidates(items), tf.float32), transpose_b=True
        )
        logits += self._column_bias(items, count)[tf.newaxis, :]
        if seen is not None:
            vocabulary = tf.shape(self.log_frequency, out_type=items.dtype)[0]
            count_items = tf.size(items, out_type=items.dtype)
            columns = tf.scatter_nd(
                items[:, tf.newaxis], tf.range(1, count_items + 1), vocabulary[tf.newaxis]
            )
            seen_columns = tf.gather(columns, seen[1]) - 1  # -1: not a candidate this step
            logits = masked(logits, seen[0], seen_columns, NOT_A_CANDIDATE)
        if self.extra_negatives:
            logits = tf.concat([logits, self._uniform_logits(queries, targets, candidates)], axis=1)
        return weighted_mean(softmax_loss(logits, column), weights, count)

    def _column_bias(self, items: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        """Added to each distinct item's logits: minus the log of its probability to be in a
        batch of ``count`` draws (logQ), and far below any logit for padding (item 0)."""
        bias = tf.zeros(tf.shape(items), tf.float32)
        if self.logq:
            share = tf.minimum(tf.exp(tf.gather(self.log_frequency, items)), 1.0 - 1e-7)
            in_batch = -tf.math.expm1(tf.maximum(count, 1.0) * tf.math.log1p(-share))
            bias = -tf.math.log(tf.maximum(in_batch, 1e-30))
        return tf.where(items == 0, NOT_A_CANDIDATE, bias)

    def _uniform_logits(
        self, queries: tf.Tensor, targets: tf.Tensor, candidates: Candidates
    ) -> tf.Tensor:
        items = tf.shape(self.log_frequency)[0]  # one entry per row of the item vocabulary
        sampled = tf.random.uniform([self.extra_negatives], self.first_item, items, dtype=tf.int32)
        sampled = tf.cast(sampled, targets.dtype)
        negatives = tf.cast(candidates(sampled), tf.float32)
        logits = tf.matmul(queries, negatives, transpose_b=True) / self.temperature
        if self.logq:
            logits -= tf.math.log(
                tf.cast(self.extra_negatives, tf.float32) / tf.cast(items, tf.float32)
            )
        hit = tf.equal(targets[:, tf.newaxis], sampled[tf.newaxis, :])
        return tf.where(hit, tf.float32.min, logits)


def softmax_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Each row's softmax cross-entropy against its label column, ``[rows]``.

    The same as ``tf.nn.sparse_softmax_cross_entropy_with_logits``, built from its parts: on
    this machine's CPU that kernel took 6 ms for a step's 1900 x 1300 logits, forward only,
    and these parts 1.3 ms; a step's loss with gradients went from 11.6 to 8.1 ms. The largest
    logit of a row is subtracted before ``exp`` and needs no gradient, because the result does
    not depend on it.
    """
    largest = tf.stop_gradient(tf.reduce_max(logits, axis=1, keepdims=True))
    log_total = tf.math.log(tf.reduce_sum(tf.exp(logits - largest), axis=1)) + largest[:, 0]
    positive = tf.gather(logits, labels[:, tf.newaxis], batch_dims=1)[:, 0]
    return log_total - positive


def weighted_mean(losses: tf.Tensor, weights: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(losses * weights) / tf.maximum(count, 1.0)
