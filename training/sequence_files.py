"""Reading examples of the sequences layout (feature spec v2) back into events and histories.

A window file holds each user's events of one batch and date, once each, and the history
before the window's first event. The trainer builds its own training windows from every
event of the data window (:mod:`.sequences`), so here windows are only unpacked into event
columns. Held-out events need the history a per-event example would have carried: the user's
items strictly earlier than the event, most recent first, from the merged timeline of all
their windows, continued with the context of their oldest window.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import HISTORY_PADDING
from streamrec.infra.contracts.feature_spec import ExampleFile

_PARSE_CHUNK = 2048
_STEP_FEATURES = (spec.EVENT_ID, spec.ITEM_ID, spec.EVENT_TYPE)


@dataclass(frozen=True)
class SequenceFiles:
    events: dict[str, np.ndarray]  # one row per step: the event columns of the events layout
    contexts: dict[str, list[str]]  # per user: the history before their oldest window


def read_sequence_files(files: list[ExampleFile], history_length: int) -> SequenceFiles:
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in (*_STEP_FEATURES, spec.TIMESTAMP, spec.USER_ID)
    }
    windows: list[tuple[str, int, np.ndarray]] = []  # user, first event time, history
    if files:
        dataset = tf.data.TFRecordDataset([str(f.path) for f in files], num_parallel_reads=4)
        dataset = dataset.batch(_PARSE_CHUNK).map(
            lambda batch: _parse(batch, history_length), num_parallel_calls=tf.data.AUTOTUNE
        )
        for batch in dataset.as_numpy_iterator():
            _unpack(batch, parts, windows)
    events = {name: _column(values, name) for name, values in parts.items()}
    contexts: dict[str, list[str]] = {}
    for user, _, history in sorted(windows, key=lambda w: (w[0], w[1])):
        contexts.setdefault(user.decode(), [h.decode() for h in history if h])
    return SequenceFiles(events, contexts)


def holdout_histories(
    events: dict[str, np.ndarray],
    contexts: dict[str, list[str]],
    held_out: np.ndarray,
    history_length: int,
) -> np.ndarray:
    """``[n, history_length]`` histories of the events where ``held_out`` is set, padded.

    ``events`` are every event read, sorted by (time, event_id); ``contexts`` the histories
    before each user's oldest window.
    """
    users, items, times = events[spec.USER_ID], events[spec.ITEM_ID], events[spec.TIMESTAMP]
    wanted = np.flatnonzero(held_out)
    result = np.full((len(wanted), history_length), HISTORY_PADDING, dtype=object)
    timelines: dict[str, tuple[list[int], list[str]]] = {}
    needed = set(users[wanted].tolist())
    for row in range(len(users)):
        user = users[row]
        if user in needed:
            timeline = timelines.setdefault(user, ([], []))
            timeline[0].append(int(times[row]))
            timeline[1].append(items[row])
    for out, row in enumerate(wanted):
        user_times, user_items = timelines[users[row]]
        end = bisect_left(user_times, int(times[row]))
        history = user_items[max(0, end - history_length) : end][::-1]
        history += contexts.get(users[row], [])[: history_length - len(history)]
        result[out, : len(history)] = history
    return result.astype(str)


def _unpack(batch: dict[str, np.ndarray], parts: dict[str, list], windows: list) -> None:
    """Appends a parsed batch's steps to ``parts`` and its windows' contexts to ``windows``."""
    lengths = batch["lengths"]
    steps = np.arange(batch[spec.TIMESTAMP].shape[1]) < lengths[:, None]
    for name in (*_STEP_FEATURES, spec.TIMESTAMP):
        parts[name].append(batch[name][steps])
    users = batch[spec.USER_ID]
    parts[spec.USER_ID].append(np.repeat(users, lengths))
    windows += zip(users, batch[spec.TIMESTAMP][:, 0], batch[spec.HISTORY], strict=True)


def _column(values: list[np.ndarray], name: str) -> np.ndarray:
    if name == spec.TIMESTAMP:
        return np.concatenate(values) if values else np.array([], np.int64)
    return np.concatenate(values).astype(str) if values else np.array([], str)


def _parse(batch: tf.Tensor, history_length: int) -> dict[str, tf.Tensor]:
    context, steps, lengths = tf.io.parse_sequence_example(
        batch,
        context_features={
            spec.USER_ID: tf.io.FixedLenFeature([], tf.string),
            spec.HISTORY: tf.io.VarLenFeature(tf.string),
        },
        sequence_features={
            **{name: tf.io.FixedLenSequenceFeature([], tf.string) for name in _STEP_FEATURES},
            spec.TIMESTAMP: tf.io.FixedLenSequenceFeature([], tf.int64),
        },
    )
    history = tf.sparse.to_dense(context[spec.HISTORY], default_value=HISTORY_PADDING)
    history = history[:, :history_length]
    history = tf.pad(
        history,
        [[0, 0], [0, history_length - tf.shape(history)[1]]],
        constant_values=HISTORY_PADDING,
    )
    return {
        spec.USER_ID: context[spec.USER_ID],
        spec.HISTORY: history,
        **steps,
        "lengths": lengths[spec.TIMESTAMP],
    }
