"""What the query tower knows about each event of a history besides its item: its type, and
how long it came before the next event or, for the newest one, before the request.

Recency enters as that gap, not as the event's age: the gaps of a window are the same
whichever of its positions is the query, so training still encodes a window once and reads
every position, and the newest event's gap is the time since the user's last action, which
serving knows from the request time. Gaps are bucketed on a log2 scale of seconds (a minute
matters just after an event and not a month later), with buckets of their own for events at
the same time (the lines of one basket) and for unknown times. Types are the event schema's.

Training windows carry the gaps and types as integers (:func:`type_ids`, :data:`UNKNOWN_GAP`);
serving passes times and type names, which :class:`EventContext` converts the same way.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.events import EVENT_TYPES
from streamrec.infra.contracts.query_inputs import (
    TYPE_BUCKETS,
    TYPE_PADDING,
    UNKNOWN_GAP,
    event_type_index,
)

_GAP_UNKNOWN, _GAP_SAME_TIME, _FIRST_LOG_BUCKET = 0, 1, 2
_LOG_BUCKETS = 28  # 2**27 s is over four years
GAP_BUCKETS = _FIRST_LOG_BUCKET + _LOG_BUCKETS


def type_ids(types: np.ndarray) -> np.ndarray:
    """Event type names -> the indices :class:`EventContext` looks up."""
    return np.fromiter((event_type_index(t) for t in types), np.int64, len(types))


def gap_buckets(gaps_ms: tf.Tensor) -> tf.Tensor:
    """Gaps in ms (negative: unknown) -> bucket indices in ``[0, GAP_BUCKETS)``."""
    seconds = tf.cast(tf.maximum(gaps_ms, 0), tf.float32) / 1000.0
    logs = tf.floor(tf.math.log1p(seconds) / math.log(2.0))
    buckets = _FIRST_LOG_BUCKET + tf.minimum(tf.cast(logs, tf.int64), _LOG_BUCKETS - 1)
    buckets = tf.where(gaps_ms == 0, tf.constant(_GAP_SAME_TIME, tf.int64), buckets)
    return tf.where(gaps_ms < 0, tf.constant(_GAP_UNKNOWN, tf.int64), buckets)


def serving_gaps(times: tf.Tensor, counts: tf.Tensor, request_time: tf.Tensor) -> tf.Tensor:
    """Gaps of histories given most recent first: ``times`` [batch, length] (ms, padded with
    anything), ``counts`` real events per row, ``request_time`` [batch] -> gaps [batch, length]
    in the same order; the newest event's gap runs to the request."""
    times = tf.cast(times, tf.int64)
    following = tf.concat([tf.cast(request_time, tf.int64)[:, tf.newaxis], times[:, :-1]], axis=1)
    real = tf.sequence_mask(counts, tf.shape(times)[1])
    known = real & (times >= 0) & (following >= 0)
    return tf.where(known, following - times, tf.constant(UNKNOWN_GAP, tf.int64))


class EventContext(tf.keras.layers.Layer):
    """Gap buckets and event types -> one embedding per position, added to the item's."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gaps = tf.keras.layers.Embedding(GAP_BUCKETS, dim)
        self.types = tf.keras.layers.Embedding(TYPE_BUCKETS, dim)
        self.type_lookup = tf.keras.layers.StringLookup(
            vocabulary=list(EVENT_TYPES), mask_token=TYPE_PADDING
        )

    def call(self, gaps_ms: tf.Tensor, types: tf.Tensor) -> tf.Tensor:
        """``gaps_ms`` int [batch, time]; ``types`` indices, or names as serving passes them."""
        if types.dtype == tf.string:
            types = self.type_lookup(types)
        return self.gaps(gap_buckets(gaps_ms)) + self.types(tf.cast(types, tf.int64))
