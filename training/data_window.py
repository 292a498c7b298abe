"""The data a training run sees: committed examples of a date window, split in time.

The hold-out is the newest ``holdout_fraction`` of the *examples* (a time quantile of their
event times), not of the time range: on a real stream a fraction of the range can hold a
handful of examples from only the most active users. Everything before the cutoff trains;
everything from it on is evaluated, never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.feature_spec import ExampleFile
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_offline_examples
from streamrec.training.sequence_files import (
    holdout_histories,
    joined_tokens,
    padded_histories,
    read_sequence_files,
)

_PARSE_CHUNK = 8192
_EVENT_FEATURES = (spec.EVENT_ID, spec.USER_ID, spec.ITEM_ID, spec.EVENT_TYPE, spec.TIMESTAMP)
_HISTORY_FEATURES = (spec.HISTORY, spec.HISTORY_TIMESTAMP, spec.HISTORY_EVENT_TYPE)


@dataclass(frozen=True)
class DataWindow:
    files: list[ExampleFile]
    cutoff: int  # events from this time (ms) on are held out
    events: dict[str, np.ndarray]  # every example's event fields, sorted by (time, event_id)
    holdout: dict[str, np.ndarray]  # held-out examples with their history, for evaluation
    history_length: int = 0
    contexts: dict = field(default_factory=dict)  # per user: history before their first window

    @property
    def train_mask(self) -> np.ndarray:
        return self.events[spec.TIMESTAMP] < self.cutoff

    def validation_split(self, fraction: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The newest ``fraction`` of the training part, held out of the fit to stop it early:
        the mask of the events the fit trains on, and the validation examples with their
        histories (as the hold-out's). No validation (``fraction`` 0) trains on all of it."""
        train = self.train_mask
        times = self.events[spec.TIMESTAMP]
        start = holdout_cutoff(times[train], fraction) if train.any() else self.cutoff
        fitted = train & (times < start)
        validation = train & ~fitted
        examples = {name: column[validation] for name, column in self.events.items()}
        examples.update(
            holdout_histories(self.events, self.contexts, validation, self.history_length)
        )
        return fitted, examples

    def describe(self) -> dict:
        times = self.events[spec.TIMESTAMP]
        return {
            "start_date": self.files[0].date,
            "end_date": self.files[-1].date,
            "files": len(self.files),
            "examples": len(times),
            "min_timestamp": int(times.min()),
            "max_timestamp": int(times.max()),
            "holdout_from_timestamp": int(self.cutoff),
            "holdout_examples": len(self.holdout[spec.TIMESTAMP]),
        }


def committed_files(
    config: Config, start_date: str | None, end_date: str | None
) -> list[ExampleFile]:
    files = open_offline_examples(config).files(start_date, end_date)
    if not files:
        window = (
            f" between {start_date or '...'} and {end_date or '...'}"
            if start_date or end_date
            else ""
        )
        raise StreamrecError(
            f"no committed training examples in {config.examples_location}{window}; "
            "run `streamrec features run --until-idle` first"
        )
    return files


def load_window(
    files: list[ExampleFile],
    history_length: int,
    holdout_fraction: float,
    cutoff: int | None = None,
) -> DataWindow:
    """Reads the files, of either layout; ``cutoff`` (from a version's metadata) overrides
    the fraction."""
    per_event = [f for f in files if f.layout == spec.EVENTS_LAYOUT]
    windows = read_sequence_files(
        [f for f in files if f.layout == spec.SEQUENCES_LAYOUT], history_length
    )
    events = _concatenated(_read(per_event, history_length, with_history=False), windows.events)
    order = np.lexsort((events[spec.EVENT_ID], events[spec.TIMESTAMP]))
    events = {name: column[order] for name, column in events.items()}
    if cutoff is None:
        cutoff = holdout_cutoff(events[spec.TIMESTAMP], holdout_fraction)
    late_files = [f for f in per_event if f.max_timestamp >= cutoff]
    holdout = _read(late_files, history_length, with_history=True, min_timestamp=cutoff)
    from_windows = np.isin(events[spec.EVENT_ID], windows.events[spec.EVENT_ID])
    held_out = from_windows & (events[spec.TIMESTAMP] >= cutoff)
    if held_out.any():
        window_holdout = {name: column[held_out] for name, column in events.items()}
        window_holdout.update(holdout_histories(events, windows.contexts, held_out, history_length))
        holdout = _concatenated(holdout, window_holdout)
    return DataWindow(files, cutoff, events, holdout, history_length, windows.contexts)


def _concatenated(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> dict:
    if not len(second[spec.TIMESTAMP]):
        return first
    if not len(first[spec.TIMESTAMP]):
        return second
    return {name: np.concatenate([first[name], second[name]]) for name in first}


def holdout_cutoff(timestamps: np.ndarray, fraction: float) -> int:
    """The event time from which the newest ``fraction`` of the examples are held out."""
    if fraction <= 0 or len(timestamps) == 0:
        return int(timestamps.max()) + 1 if len(timestamps) else 0
    return int(np.quantile(timestamps, 1.0 - fraction, method="higher"))


def _read(
    files: list[ExampleFile], history_length: int, with_history: bool, min_timestamp: int = 0
) -> dict[str, np.ndarray]:
    features = {name: tf.io.FixedLenFeature([], tf.string) for name in _EVENT_FEATURES}
    features[spec.TIMESTAMP] = tf.io.FixedLenFeature([], tf.int64)
    features[spec.CONTEXT_TOKENS] = tf.io.RaggedFeature(tf.string)  # absent before spec 4
    if with_history:
        features[spec.HISTORY] = tf.io.VarLenFeature(tf.string)
        features[spec.HISTORY_TIMESTAMP] = tf.io.VarLenFeature(tf.int64)  # absent before spec 3
        features[spec.HISTORY_EVENT_TYPE] = tf.io.VarLenFeature(tf.string)
    dataset = tf.data.TFRecordDataset([str(f.path) for f in files], num_parallel_reads=4)
    dataset = dataset.batch(_PARSE_CHUNK).map(
        lambda batch: _parse(batch, features, history_length), num_parallel_calls=tf.data.AUTOTUNE
    )
    parts: dict[str, list[np.ndarray]] = {name: [] for name in features}
    for batch in dataset.as_numpy_iterator():
        keep = batch[spec.TIMESTAMP] >= min_timestamp
        for name in (*_EVENT_FEATURES, spec.CONTEXT_TOKENS):
            parts[name].append(batch[name][keep])
        for name in _HISTORY_FEATURES if with_history else ():
            parts[name].append(batch[name][keep])
    columns = {
        name: np.concatenate(values) if values else np.array([]) for name, values in parts.items()
    }
    columns[spec.CONTEXT_TOKENS] = columns[spec.CONTEXT_TOKENS].astype(object)
    for name in (spec.EVENT_ID, spec.USER_ID, spec.ITEM_ID, spec.EVENT_TYPE):
        columns[name] = columns[name].astype(str)
    for name in _HISTORY_FEATURES if with_history else ():
        values = columns[name]
        kind = np.int64 if name == spec.HISTORY_TIMESTAMP else str
        columns[name] = values.astype(kind) if len(values) else np.empty((0, history_length), kind)
    return columns


def _parse(batch: tf.Tensor, features: dict, history_length: int) -> dict[str, tf.Tensor]:
    parsed = tf.io.parse_example(batch, features)
    parsed[spec.CONTEXT_TOKENS] = joined_tokens(parsed[spec.CONTEXT_TOKENS])
    if spec.HISTORY in parsed:
        parsed.update(padded_histories(parsed, history_length))
    return parsed
