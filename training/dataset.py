"""The tf.data input pipeline over the feature job's committed TFRecord examples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import HISTORY_PADDING
from streamrec.infra.contracts.feature_spec import ExampleFile

_PARSE_CHUNK = 4096
_SHUFFLE_BUFFER = 50_000


@dataclass(frozen=True)
class TimeSplit:
    """Examples before ``cutoff`` train; the rest validate (a temporal hold-out, no leakage)."""

    cutoff: int

    @classmethod
    def from_files(cls, files: Sequence[ExampleFile], validation_fraction: float) -> TimeSplit:
        first = min(f.min_timestamp for f in files)
        last = max(f.max_timestamp for f in files)
        if validation_fraction <= 0:
            return cls(last + 1)
        return cls(int(last - (last - first) * validation_fraction))


def parse_examples(serialized: tf.Tensor, history_length: int) -> dict[str, tf.Tensor]:
    """A batch of serialised tf.train.Example to model features, history padded to a fixed width."""
    parsed = tf.io.parse_example(
        serialized,
        {
            spec.USER_ID: tf.io.FixedLenFeature([], tf.string),
            spec.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
            spec.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
            spec.HISTORY: tf.io.VarLenFeature(tf.string),
        },
    )
    history = tf.sparse.to_dense(parsed[spec.HISTORY], default_value=HISTORY_PADDING)
    history = history[:, :history_length]
    padding = history_length - tf.shape(history)[1]
    history = tf.pad(history, [[0, 0], [0, padding]], constant_values=HISTORY_PADDING)
    history.set_shape([None, history_length])
    return {
        spec.USER_ID: parsed[spec.USER_ID],
        spec.ITEM_ID: parsed[spec.ITEM_ID],
        spec.TIMESTAMP: parsed[spec.TIMESTAMP],
        spec.HISTORY: history,
    }


def example_dataset(
    files: Sequence[ExampleFile],
    history_length: int,
    batch_size: int,
    *,
    keep: str = "all",
    split: TimeSplit | None = None,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batched examples; ``keep`` is "train", "validation" or "all" relative to ``split``."""
    if keep != "all" and split is None:
        raise ValueError("keep='train' or 'validation' needs a split")
    shuffle = shuffle_seed is not None
    dataset = tf.data.Dataset.from_tensor_slices([str(f.path) for f in files])
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=shuffle_seed)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=4,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle,
    )
    # Parsing a whole chunk at once is far cheaper than one example at a time.
    dataset = dataset.batch(_PARSE_CHUNK).map(
        lambda serialized: parse_examples(serialized, history_length),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.unbatch()
    if keep == "train":
        dataset = dataset.filter(lambda e: e[spec.TIMESTAMP] < split.cutoff)
    elif keep == "validation":
        dataset = dataset.filter(lambda e: e[spec.TIMESTAMP] >= split.cutoff)
    if shuffle:
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=shuffle_seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def collect(dataset: tf.data.Dataset) -> dict[str, np.ndarray]:
    """Materialises a (small) dataset as NumPy arrays: vocabularies and evaluation use this."""
    parts: dict[str, list[np.ndarray]] = {}
    for batch in dataset.as_numpy_iterator():
        for name, value in batch.items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}
