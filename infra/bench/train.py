"""``streamrec bench train``: the trainer's examples/s beside a bare Keras loop, in one run.

Both train the default model (the configured ``[training]`` section) on the same windows of a
synthetic stream. The trainer's figure is what ``streamrec train`` runs: its ``fit`` with the
tf.data pipeline, checkpoints, TensorBoard and the progress log, timed over the epochs after
the first (which traces the step function). The baseline is the floor for this model on this
machine: the same train step, compiled once, over the same batches already in memory as
tensors. An
example is one query: a window position with a next item.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.feature_spec import context_tokens
from streamrec.infra.core.config import Config
from streamrec.ingest.synthetic import SyntheticSpec, generate
from streamrec.training.distribution import SINGLE
from streamrec.training.fit import fit
from streamrec.training.request_context import TOKEN_SEPARATOR
from streamrec.training.sequences import training_windows
from streamrec.training.two_tower import build_two_tower
from streamrec.training.vocabulary import Vocabulary
from streamrec.training.window_batches import WindowBatches


@dataclasses.dataclass(frozen=True)
class TrainBenchmark:
    users: int = 20_000
    items: int = 10_000
    events: int = 600_000
    epochs: int = 3  # the first traces and warms up; the rest are timed


class _EpochTimes(tf.keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self.started)


def run_train_benchmark(config: Config, bench: TrainBenchmark, say: Callable) -> dict:
    params = config.training
    length = config.features.history_length
    say(f"generating {bench.events} events of {bench.users} users over {bench.items} items")
    events = generate(SyntheticSpec(bench.users, bench.items, bench.events, seed=1))
    users = np.array([e.user_id for e in events])
    items = np.array([e.item_id for e in events])
    times = np.array([e.timestamp for e in events], np.int64)
    types = np.array([e.event_type for e in events])
    contexts = None
    if params.request_context:
        contexts = np.array(
            [TOKEN_SEPARATOR.join(context_tokens(e.context)) for e in events], object
        )
    vocabulary = Vocabulary.from_events(users, items)
    index = vocabulary.index()
    windows = training_windows(users, items, index, length + 1, times, types, contexts)
    queries = int((windows["targets"] > 0).sum())
    say(f"{len(windows['inputs'])} windows, {queries} queries per epoch")

    say(f"streamrec's fit of two_tower/{params.query_encoder}, {bench.epochs} epochs")
    epoch_times = _EpochTimes()
    with tempfile.TemporaryDirectory() as run_dir:
        fit(
            windows,
            vocabulary,
            length,
            dataclasses.replace(params, epochs=bench.epochs),
            Path(run_dir),
            SINGLE,
            extra_callbacks=[epoch_times],
        )
    say("a bare loop: the same train step over batches already in memory")
    bare_rate = _bare_loop(windows, vocabulary, length, params)
    return {
        "model": f"two_tower/{params.query_encoder}",
        "embedding_dim": params.embedding_dim,
        "batch_windows": params.batch_size,
        **fit_figures(queries, epoch_times.seconds, bare_rate),
    }


def fit_figures(queries: int, epoch_seconds: list[float], bare_rate: float) -> dict:
    """The fit's rate in its least disturbed epoch after the first (which traces and warms
    up), beside the bare loop's."""
    fit_rate = queries / min(epoch_seconds[1:] or epoch_seconds)
    return {
        "queries_per_epoch": queries,
        "examples_per_s": round(fit_rate),
        "bare_loop_examples_per_s": round(bare_rate),
        "fit_vs_bare_loop": round(fit_rate / bare_rate, 3),
        "epoch_seconds": [round(s, 2) for s in epoch_seconds],
    }


def _bare_loop(windows, vocabulary, length, params) -> float:
    tf.keras.utils.set_random_seed(params.seed)
    model = build_two_tower(vocabulary.items, vocabulary.log_frequency(), length, params)
    model.build_variables()
    model.compile(optimizer=tf.keras.optimizers.Adam(params.learning_rate))
    plan = WindowBatches(windows, params)
    batches = list(plan.dataset().take(plan.steps))  # one epoch of the same batches, in memory
    step = tf.function(model.train_step, reduce_retracing=True)
    for batch in batches[:5]:
        step(batch)  # tracing and warm-up
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        for batch in batches:
            step(batch)
        float(model.optimizer.iterations.numpy())  # waits for the last step
        seconds.append(time.perf_counter() - started)
    queries = sum(int((b["targets"] > 0).numpy().sum()) for b in batches)
    return queries / min(seconds)
