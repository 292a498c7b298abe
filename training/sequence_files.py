"""Reading examples of the sequences layout (feature spec v2) back into events and histories.

A window file holds each user's events of one batch and date, once each, and the history
before the window's first event. The trainer builds its own training windows from every
event of the data window (:mod:`.sequences`), so here windows are only unpacked into event
columns. Held-out events need the history a per-event example would have carried: the user's
items strictly earlier than the event, with their times and types, most recent first, from the
merged timeline of all their windows, continued with the context of their oldest window.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import HISTORY_PADDING
from streamrec.infra.contracts.feature_spec import ExampleFile
from streamrec.training.request_context import TOKEN_SEPARATOR

_PARSE_CHUNK = 2048
_STEP_FEATURES = (spec.EVENT_ID, spec.ITEM_ID, spec.EVENT_TYPE)


Context = tuple[list[str], list[int], list[str]]  # items, times (-1: unknown), types ("")


@dataclass(frozen=True)
class SequenceFiles:
    events: dict[str, np.ndarray]  # one row per step: the event columns of the events layout
    contexts: dict[str, Context]  # per user: the history before their oldest window


def read_sequence_files(files: list[ExampleFile], history_length: int) -> SequenceFiles:
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in (*_STEP_FEATURES, spec.TIMESTAMP, spec.USER_ID, spec.CONTEXT_TOKENS)
    }
    windows: list[tuple] = []  # user, first event time, history items, times, types
    if files:
        dataset = tf.data.TFRecordDataset([str(f.path) for f in files], num_parallel_reads=4)
        dataset = dataset.batch(_PARSE_CHUNK).map(
            lambda batch: _parse(batch, history_length), num_parallel_calls=tf.data.AUTOTUNE
        )
        for batch in dataset.as_numpy_iterator():
            _unpack(batch, parts, windows)
    events = {name: _column(values, name) for name, values in parts.items()}
    contexts: dict[str, Context] = {}
    for user, _, history, times, types in sorted(windows, key=lambda w: (w[0], w[1])):
        real = [i for i, h in enumerate(history) if h]
        contexts.setdefault(
            user.decode(),
            (
                [history[i].decode() for i in real],
                [int(times[i]) for i in real],
                [types[i].decode() for i in real],
            ),
        )
    return SequenceFiles(events, contexts)


def holdout_histories(
    events: dict[str, np.ndarray],
    contexts: dict[str, Context],
    held_out: np.ndarray,
    history_length: int,
) -> dict[str, np.ndarray]:
    """The histories of the events where ``held_out`` is set, as the events layout's
    ``history``, ``history_timestamp`` and ``history_event_type``, each ``[n,
    history_length]`` and padded.

    ``events`` are every event read, sorted by (time, event_id); ``contexts`` the histories
    before each user's oldest window.
    """
    users, times = events[spec.USER_ID], events[spec.TIMESTAMP]
    columns = (spec.ITEM_ID, spec.TIMESTAMP, spec.EVENT_TYPE)
    names = (spec.HISTORY, spec.HISTORY_TIMESTAMP, spec.HISTORY_EVENT_TYPE)
    wanted = np.flatnonzero(held_out)
    result = {
        name: np.full((len(wanted), history_length), padding, dtype=object)
        for name, padding in zip(names, (HISTORY_PADDING, -1, ""), strict=True)
    }
    timelines: dict[str, list[list]] = {}
    needed = set(users[wanted].tolist())
    for row in range(len(users)):
        if users[row] in needed:
            timeline = timelines.setdefault(users[row], [[], [], []])
            for values, column in zip(timeline, columns, strict=True):
                values.append(events[column][row])
    for out, row in enumerate(wanted):
        timeline = timelines[users[row]]
        end = bisect_left(timeline[1], times[row])
        context = contexts.get(users[row], ([], [], []))
        for name, values, before in zip(names, timeline, context, strict=True):
            history = values[max(0, end - history_length) : end][::-1]
            history += before[: history_length - len(history)]
            result[name][out, : len(history)] = history
    return {
        spec.HISTORY: result[spec.HISTORY].astype(str),
        spec.HISTORY_TIMESTAMP: result[spec.HISTORY_TIMESTAMP].astype(np.int64),
        spec.HISTORY_EVENT_TYPE: result[spec.HISTORY_EVENT_TYPE].astype(str),
    }


def _unpack(batch: dict[str, np.ndarray], parts: dict[str, list], windows: list) -> None:
    """Appends a parsed batch's steps to ``parts`` and its windows' contexts to ``windows``."""
    lengths = batch["lengths"]
    steps = np.arange(batch[spec.TIMESTAMP].shape[1]) < lengths[:, None]
    for name in (*_STEP_FEATURES, spec.TIMESTAMP, spec.CONTEXT_TOKENS):
        parts[name].append(batch[name][steps])
    users = batch[spec.USER_ID]
    parts[spec.USER_ID].append(np.repeat(users, lengths))
    windows += zip(
        users,
        batch[spec.TIMESTAMP][:, 0],
        batch[spec.HISTORY],
        batch[spec.HISTORY_TIMESTAMP],
        batch[spec.HISTORY_EVENT_TYPE],
        strict=True,
    )


def _column(values: list[np.ndarray], name: str) -> np.ndarray:
    if name == spec.TIMESTAMP:
        return np.concatenate(values) if values else np.array([], np.int64)
    if name == spec.CONTEXT_TOKENS:  # bytes objects: a fixed-width array is as wide as the widest
        return np.concatenate(values) if values else np.array([], object)
    return np.concatenate(values).astype(str) if values else np.array([], str)


def _parse(batch: tf.Tensor, history_length: int) -> dict[str, tf.Tensor]:
    context, steps, lengths = tf.io.parse_sequence_example(
        batch,
        context_features={
            spec.USER_ID: tf.io.FixedLenFeature([], tf.string),
            spec.HISTORY: tf.io.VarLenFeature(tf.string),
            spec.HISTORY_TIMESTAMP: tf.io.VarLenFeature(tf.int64),  # absent before spec 3
            spec.HISTORY_EVENT_TYPE: tf.io.VarLenFeature(tf.string),
        },
        sequence_features={
            **{name: tf.io.FixedLenSequenceFeature([], tf.string) for name in _STEP_FEATURES},
            spec.TIMESTAMP: tf.io.FixedLenSequenceFeature([], tf.int64),
            spec.CONTEXT_TOKENS: tf.io.RaggedFeature(tf.string),  # absent before spec 4
        },
    )
    tokens = steps.pop(spec.CONTEXT_TOKENS)
    return {
        spec.USER_ID: context[spec.USER_ID],
        **padded_histories(context, history_length),
        **steps,
        spec.CONTEXT_TOKENS: joined_tokens(tokens).to_tensor(
            default_value="", shape=tf.shape(steps[spec.TIMESTAMP])
        ),
        "lengths": lengths[spec.TIMESTAMP],
    }


def joined_tokens(tokens: tf.RaggedTensor) -> tf.RaggedTensor:
    """Each event's context tokens ``[..., (tokens)]`` as one string, as training keeps them
    (:mod:`.request_context`)."""
    return tf.strings.reduce_join(tokens, axis=-1, separator=TOKEN_SEPARATOR)


def padded_histories(parsed: dict[str, tf.Tensor], history_length: int) -> dict[str, tf.Tensor]:
    """The parsed sparse history lists, dense ``[batch, history_length]``; times missing from
    examples of older feature specs are -1, or ``""`` for types."""
    found = {}
    for name, padding in (
        (spec.HISTORY, HISTORY_PADDING),
        (spec.HISTORY_TIMESTAMP, -1),
        (spec.HISTORY_EVENT_TYPE, ""),
    ):
        values = tf.sparse.to_dense(parsed[name], default_value=padding)[:, :history_length]
        width = [[0, 0], [0, history_length - tf.shape(values)[1]]]
        found[name] = tf.pad(values, width, constant_values=padding)
    return found
