"""The fit's input: an endless stream of epochs, each a new shuffle of the training windows
cut into batches.

Windows of similar length share a batch, which is cut to the longest of them, so the encoder
does not run over padding. XLA, which wants one shape, gets full-width batches of one size
instead.

An epoch is planned whole, in a few vector ops over the window numbers: shuffle them, group
them by length bucket, number the batches, shuffle the batches. Each batch is then one gather
of its rows. tf.data's per-window ``shuffle`` and ``bucket_by_sequence_length`` took 1.5 s of
CPU per epoch of 38k windows here, on the cores the train step needs; the plan and the
gathers take 0.2 s.

Under a distribution strategy every input pipeline plans the same epochs (the seed is shared)
and takes its replicas' contiguous shares of each global batch, as tf.data's rebatching would;
a global batch smaller than the replicas leaves some of them empty.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from streamrec.infra.core.config import TrainingConfig

_BUCKET_QUANTILES = (0.2, 0.4, 0.6, 0.8)


class WindowBatches:
    """The batches of ``windows`` (each ``[windows, positions, ...]``; ``targets`` is 0 past a
    window's end), ``steps`` global batches an epoch."""

    def __init__(self, windows: dict[str, np.ndarray], params: TrainingConfig) -> None:
        self._windows = windows
        self._seed = params.seed
        self._size = params.batch_size
        self._full_width = params.jit_compile
        lengths = (windows["targets"] > 0).sum(axis=1)
        if self._full_width:
            self._buckets = np.zeros(len(lengths), np.int64)
        else:
            bounds = np.unique(np.quantile(lengths, _BUCKET_QUANTILES).astype(int) + 1)
            self._buckets = np.digitize(lengths, bounds).astype(np.int64)
        self._batch_sizes = self._global_batch_sizes()
        self.steps = len(self._batch_sizes)

    def dataset(self, replicas: int = 1, served: range = range(1)) -> tf.data.Dataset:
        """Batches for the replicas ``served`` of ``replicas``: per global batch, one for each
        of them in order."""
        columns = {name: tf.constant(values) for name, values in self._windows.items()}

        def rows(indices: tf.Tensor) -> dict[str, tf.Tensor]:
            batch = {name: tf.gather(values, indices) for name, values in columns.items()}
            return batch if self._full_width else _cut_padding(batch)

        return (
            tf.data.Dataset.random(seed=self._seed)
            .flat_map(
                lambda seed: tf.data.Dataset.from_tensor_slices(self._epoch(seed, replicas, served))
            )
            .map(rows, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )

    def for_strategy(self, strategy: tf.distribute.Strategy):
        """The dataset to fit with: plain on one replica, else one pipeline per worker."""
        replicas = strategy.num_replicas_in_sync
        if replicas == 1:
            return self.dataset()

        def pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
            local = replicas // context.num_input_pipelines
            first = context.input_pipeline_id * local
            return self.dataset(replicas, range(first, first + local))

        return strategy.distribute_datasets_from_function(pipeline)

    def _global_batch_sizes(self) -> np.ndarray:
        sizes = []
        for windows in np.bincount(self._buckets):
            if self._full_width and windows >= self._size:
                sizes += [self._size] * (windows // self._size)  # the rest waits for an epoch
            else:
                sizes += [self._size] * (windows // self._size) + [windows % self._size] * bool(
                    windows % self._size
                )
        return np.array(sizes, np.int64)

    def _epoch(self, seed: tf.Tensor, replicas: int, served: range) -> tf.RaggedTensor:
        """One epoch's window numbers, a row per served replica of each global batch."""
        count, size = len(self._buckets), self._size
        buckets = tf.constant(self._buckets)
        per_bucket = np.bincount(self._buckets)
        bucket_starts = tf.constant(np.cumsum(per_bucket) - per_bucket)
        bucket_batches = -(-per_bucket // size)
        first_batches = tf.constant(np.cumsum(bucket_batches) - bucket_batches)

        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), [seed, 0])
        order = tf.gather(order, tf.argsort(tf.gather(buckets, order), stable=True))
        bucket = tf.gather(buckets, order)
        rank = tf.range(count, dtype=tf.int64) - tf.gather(bucket_starts, bucket)
        batch = tf.gather(first_batches, bucket) + rank // size
        kept = batch < self.steps  # full-width batches leave a remainder out
        order, batch, place = order[kept], batch[kept], (rank % size)[kept]
        replica = place * replicas // tf.gather(tf.constant(self._batch_sizes), batch)
        kept = (replica >= served.start) & (replica < served.stop)
        shuffled = tf.random.experimental.stateless_shuffle(
            tf.range(self.steps, dtype=tf.int64), [seed, 1]
        )
        row = tf.gather(shuffled, batch[kept]) * len(served) + replica[kept] - served.start
        by_row = tf.argsort(row, stable=True)
        return tf.RaggedTensor.from_value_rowids(
            tf.gather(order[kept], by_row),
            tf.gather(row, by_row),
            nrows=self.steps * len(served),
        )


def _cut_padding(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    lengths = tf.math.count_nonzero(batch["targets"], axis=1, dtype=tf.int32)
    width = tf.reduce_max(tf.concat([lengths, [1]], axis=0))  # a replica's batch may be empty
    return {name: values[:, :width] for name, values in batch.items()}
