"""Fitting: the strategy, the input pipeline and Keras's fit loop, resumable and observable.

``batch_size`` is the global batch: replicas split it, so one worker and four fit the same
steps on the same data and reach the same quality (raise it when adding GPUs). After the fit
the weights are copied into a plain, single-device model, which is what the later steps
(evaluation, export) use whatever strategy trained it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from streamrec.infra.config import TrainingConfig
from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.errors import StreamrecError
from streamrec.training.distribution import Role, distribution_strategy
from streamrec.training.fit_callbacks import StepCounter, fit_callbacks, steps_per_call
from streamrec.training.item_features import ItemFeatures
from streamrec.training.two_tower import TwoTowerModel, build_two_tower
from streamrec.training.vocabulary import Vocabulary
from streamrec.training.warm_start import warm_start

_BUCKET_QUANTILES = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True)
class Fitted:
    model: TwoTowerModel  # single-device, float32
    summary: dict


def fit(
    windows: dict[str, np.ndarray],
    vocabulary: Vocabulary,
    history_length: int,
    params: TrainingConfig,
    run_dir: Path,
    role: Role,
    warm_from: ModelVersion | None = None,
    extra_callbacks: list | None = None,
    item_features: ItemFeatures | None = None,
) -> Fitted:
    strategy = distribution_strategy(params.strategy, role)
    tf.keras.utils.set_random_seed(params.seed)
    replicas = strategy.num_replicas_in_sync
    if params.batch_size % replicas:
        raise StreamrecError(
            f"training.batch_size {params.batch_size} does not split over {replicas} replicas"
        )
    resumed = (run_dir / "backup").exists()
    if resumed:
        print(f"resuming from the checkpoint in {run_dir}", flush=True)
    if params.mixed_precision:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        steps = steps_per_call(params, replicas)
        with strategy.scope():
            model, warm = _model(
                vocabulary, history_length, params, warm_from, item_features, steps
            )
        callbacks = fit_callbacks(run_dir, params, role.is_chief, steps)
        callbacks += extra_callbacks or []
        batches = window_batches(windows, params)
        history = model.fit(
            batches,
            epochs=params.epochs,
            verbose=1 if sys.stdout.isatty() else 2,
            callbacks=callbacks,
        )
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    plain = build_two_tower(
        vocabulary.items, vocabulary.log_frequency(), history_length, params, item_features
    )
    plain.build_variables()
    plain.set_weights(model.get_weights())
    steps = next(c for c in callbacks if isinstance(c, StepCounter)).steps
    losses = history.history.get("loss") or [float("nan")]
    return Fitted(
        plain,
        {
            "train_loss": float(losses[-1]),
            "replicas": replicas,
            "windows": len(windows["inputs"]),
            "queries": int((windows["targets"] > 0).sum()),
            "resumed": resumed,
            "steps_planned": params.epochs * int(batches.cardinality()),
            "steps_run": steps,
            "warm_start": warm,
        },
    )


def _model(
    vocabulary, history_length, params, warm_from, item_features, steps_per_execution
) -> tuple[TwoTowerModel, dict | None]:
    model = build_two_tower(
        vocabulary.items, vocabulary.log_frequency(), history_length, params, item_features
    )
    model.build_variables()
    warm = warm_start(model, warm_from, history_length, params) if warm_from else None
    model.compile(
        optimizer=tf.keras.optimizers.Adam(params.learning_rate),
        jit_compile=params.jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model, warm


def window_batches(windows: dict[str, np.ndarray], params: TrainingConfig) -> tf.data.Dataset:
    """Shuffled batches of windows. Windows of similar length are batched together and cut to
    the longest of their batch, so the encoder does not run over padding; XLA, which wants
    static shapes, gets full-width batches instead."""
    count, batch = len(windows["inputs"]), params.batch_size
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices(windows).shuffle(
        count, seed=params.seed, reshuffle_each_iteration=True
    )
    lengths = (windows["targets"] > 0).sum(axis=1)
    boundaries = np.unique(np.quantile(lengths, _BUCKET_QUANTILES).astype(int) + 1).tolist()
    if params.jit_compile:
        dataset = dataset.batch(batch, drop_remainder=count >= batch)
    else:
        dataset = (
            dataset.bucket_by_sequence_length(
                lambda window: tf.math.count_nonzero(window["targets"], dtype=tf.int32),
                boundaries,
                [batch] * (len(boundaries) + 1),
                no_padding=True,
            )
            .map(_cut_padding)
            # A window's bucket depends on its length only, so the batches of an epoch are
            # countable; Keras needs the count to resume a checkpoint in mid-epoch.
            .apply(
                tf.data.experimental.assert_cardinality(_bucketed_steps(lengths, boundaries, batch))
            )
        )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def _bucketed_steps(lengths: np.ndarray, boundaries: list[int], batch: int) -> int:
    sizes = np.bincount(np.digitize(lengths, boundaries), minlength=len(boundaries) + 1)
    return int(sum(-(-size // batch) for size in sizes))


def _cut_padding(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    lengths = tf.math.count_nonzero(batch["targets"], axis=1, dtype=tf.int32)
    width = tf.reduce_max(tf.concat([lengths, [1]], axis=0))  # a replica's batch may be empty
    return {name: values[:, :width] for name, values in batch.items()}
