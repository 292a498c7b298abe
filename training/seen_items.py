"""Seen items in training, as serving treats them.

Serving leaves out what the user already has (``serving.exclude_seen``, on by default), so a
served list never holds an item of the user's history. A fit that ignores this spends its
capacity on the wrong task. In retail, about half of all next events repeat an earlier item,
and the cheapest way to lower the loss is to put the history on top, which is exactly what
serving removes. So, with ``training.exclude_seen`` (following serving by default):

- a position whose target is already in its window's history is not a query (it could only
  be a miss when served);
- the items of a query's history are not its negatives (they never compete with the target
  in a served list).

Only the window's own history is seen. Dropping as well the targets seen earlier in the
online history that serving leaves out (50 items) took away training queries and measured
worse on the retail year: recall@10 0.0249 against 0.0271 with 20 items of history
(docs/quality.md).
"""

from __future__ import annotations

import tensorflow as tf

from streamrec.infra.contracts.query_inputs import FIRST_ITEM
from streamrec.infra.core.config import Config


def evaluated_history_length(config: Config, exclude_seen: bool, *model_lengths: int) -> int:
    """How many of each query's newest items an evaluation reads: the longest model's history
    (each model is cut to its own), and, when seen items are left out, at least the online
    history serving leaves out. Serving excludes every item it reads from the online store
    (``max(online_history_length, the model's)``), so an evaluation that excluded only the
    model's 20 would count repeats of older items as hits that no served list can hold; on the
    retail year, EASE scored 0.039 that way and 0.021 with the 100 newest left out."""
    lengths = [config.features.history_length, *model_lengths]
    if exclude_seen:
        lengths.append(config.features.online_history_length)
    return max(lengths)


def seen_in_windows(
    inputs: tf.Tensor, targets: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``inputs`` and ``targets`` [windows, time] item indices (inputs start with the start
    token) -> ``repeats`` [windows, time] (the target is in the position's history), and the
    seen pairs: flat query positions ``queries`` [pairs] (``window * time + position``) and
    their history items ``items`` [pairs]."""
    time = tf.shape(inputs)[1]
    # history[w, t, j]: input j is an item read by position t (j <= t, not start or padding)
    causal = tf.cast(tf.linalg.band_part(tf.ones([time, time]), -1, 0), tf.bool)
    history = tf.logical_and(causal[tf.newaxis], (inputs >= FIRST_ITEM)[:, tf.newaxis, :])
    same = tf.equal(inputs[:, tf.newaxis, :], targets[:, :, tf.newaxis])
    repeats = tf.reduce_any(tf.logical_and(history, same), axis=2)
    pairs = tf.where(history)  # [pairs, 3]: window, position, history position
    time64 = tf.cast(time, tf.int64)
    queries = pairs[:, 0] * time64 + pairs[:, 1]
    items = tf.gather_nd(inputs, tf.stack([pairs[:, 0], pairs[:, 2]], axis=1))
    return repeats, queries, items


def kept_rows(queries: tf.Tensor, kept: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Flat query positions -> their rows among the ``kept`` positions [n] (of ``positions``
    in all), -1 for a position that was dropped."""
    rows = tf.scatter_nd(kept[:, tf.newaxis], tf.range(1, tf.size(kept, tf.int64) + 1), [positions])
    return tf.gather(rows, queries) - 1


def masked(logits: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor, value: float) -> tf.Tensor:
    """``logits`` with ``value`` at each (row, column) pair whose row and column are >= 0."""
    keep = tf.logical_and(rows >= 0, columns >= 0)
    indices = tf.stack([tf.boolean_mask(rows, keep), tf.boolean_mask(columns, keep)], axis=1)
    updates = tf.fill(tf.shape(indices)[:1], tf.constant(value, logits.dtype))
    return tf.tensor_scatter_nd_update(logits, tf.cast(indices, tf.int32), updates)
