"""Fitting: the strategy, the input pipeline and Keras's fit loop, resumable and observable.

``batch_size`` is the global batch: replicas split it, so one worker and four fit the same
steps on the same data and reach the same quality (raise it when adding GPUs). After the fit
the weights are copied into a plain, single-device model, which is what the later steps
(evaluation, export) use whatever strategy trained it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.core.config import TrainingConfig
from streamrec.infra.core.errors import StreamrecError
from streamrec.training.distribution import Role, distribution_strategy
from streamrec.training.early_stopping import EarlyStopping
from streamrec.training.fit_callbacks import StepCounter, fit_callbacks, steps_per_call
from streamrec.training.item_features import ItemFeatures
from streamrec.training.queries import Queries
from streamrec.training.two_tower import TwoTowerModel, build_two_tower
from streamrec.training.vocabulary import Vocabulary
from streamrec.training.warm_start import warm_start
from streamrec.training.window_batches import WindowBatches

log = logging.getLogger(__name__)


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
    say: Callable[[str], object] = log.info,
    validation: Queries | None = None,
) -> Fitted:
    """Fits for up to ``params.epochs`` epochs; with ``validation`` queries (targets are
    vocabulary rows) and a patience, stops early and keeps the best epoch's weights."""
    strategy = distribution_strategy(params.strategy, role)
    tf.keras.utils.set_random_seed(params.seed)
    replicas = strategy.num_replicas_in_sync
    if params.batch_size % replicas:
        raise StreamrecError(
            f"training.batch_size {params.batch_size} does not split over {replicas} replicas"
        )
    resumed = (run_dir / "backup").exists()
    if resumed:
        say(f"resuming from the checkpoint in {run_dir}")
    if params.mixed_precision:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        steps = steps_per_call(params, replicas)
        with strategy.scope():
            model, warm = _model(
                vocabulary, history_length, params, warm_from, item_features, steps
            )
        callbacks = fit_callbacks(run_dir, params, role.is_chief, steps)
        stopping = None
        if validation is not None and len(validation) and params.patience:
            stopping = EarlyStopping(
                validation, history_length, params.patience, say, params.seed, params.exclude_seen
            )
            callbacks.insert(0, stopping)  # its figure reaches the logs TensorBoard writes
        callbacks += extra_callbacks or []
        batches = WindowBatches(windows, params)
        history = model.fit(
            batches.for_strategy(strategy),
            epochs=params.epochs,
            steps_per_epoch=batches.steps,
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
            "steps_planned": params.epochs * batches.steps,
            "steps_run": steps,
            "warm_start": warm,
            **(stopping.summary() if stopping else {}),
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
