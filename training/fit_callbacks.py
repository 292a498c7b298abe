"""What watches a fit: checkpoints to resume from, TensorBoard logs and a step count.

Checkpoints use Keras's ``BackupAndRestore``: every ``checkpoint_every_steps`` steps the model,
optimizer and epoch/step counters are saved under the run directory; a run started again
with the same data and parameters (after kill -9, or a preempted node) finds them and
continues from there, and they are deleted when the fit completes. Under a multi-worker
strategy every worker saves (non-chief workers to temporary copies), as Keras requires.

On one device, Keras runs :func:`steps_per_call` steps per call into TensorFlow and calls the
callbacks once per call: returning to Python after every step cost about a tenth of the fit's
time here (``streamrec bench train``: 0.78 of the bare loop at one step per call, 0.91 at 32).
Checkpoint intervals are counted in calls accordingly. Distributed fits run one step per call:
inside the loop, workers whose batches differ in size disagree on the shapes of the gathered
sparse gradients.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from streamrec.infra.core.config import TrainingConfig

BACKUP_DIR = "backup"
CHECKPOINT_POINTER = "checkpoint"  # TensorFlow's file naming a directory's newest checkpoint
LOG_DIR = "logs"
_MAX_STEPS_PER_CALL = 32


def steps_per_call(params: TrainingConfig, replicas: int) -> int:
    """Steps run per call into TensorFlow: many on one device, but never past a checkpoint."""
    if replicas > 1:
        return 1
    return max(1, min(_MAX_STEPS_PER_CALL, params.checkpoint_every_steps))


class StepCounter(tf.keras.callbacks.Callback):
    """Counts the steps this process ran, which is fewer than planned after a resume. It reads
    the optimizer's counter at the ends of the fit: a per-batch hook would make Keras copy
    every step's logs to Python."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def on_train_begin(self, logs: dict | None = None) -> None:  # after BackupAndRestore's
        self._first = int(self.model.optimizer.iterations.numpy())

    def on_train_end(self, logs: dict | None = None) -> None:
        self.steps = int(self.model.optimizer.iterations.numpy()) - self._first


class LearningRateLog(tf.keras.callbacks.Callback):
    """Adds the optimizer's learning rate to each epoch's logs, for the TensorBoard callback
    that follows it (a schedule or a resumed optimizer shows there)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(tf.keras.backend.get_value(self.model.optimizer.lr))


class CheckpointCopies(tf.keras.callbacks.Callback):
    """Calls ``save`` after each checkpoint that ``BackupAndRestore`` (before it in the list)
    wrote under ``backup_dir``, and once the fit ends and the checkpoints are gone: the
    registry then keeps a copy that outlives this machine. A new checkpoint shows as a new
    modification time of TensorFlow's ``checkpoint`` pointer file, a stat per call."""

    _supports_tf_logs = True  # it reads no logs: Keras need not copy them to Python

    def __init__(self, backup_dir: Path, save: Callable[[], None]) -> None:
        super().__init__()
        self._dir = backup_dir
        self._save = save
        self._stamp = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._save()

    def _check(self) -> None:
        stamps = [p.stat().st_mtime_ns for p in self._dir.rglob(CHECKPOINT_POINTER)]
        stamp = max(stamps, default=0)
        if stamp != self._stamp:
            self._stamp = stamp
            self._save()


def fit_callbacks(run_dir: Path, params: TrainingConfig, chief: bool, steps: int) -> list:
    """``steps``: steps per call into TensorFlow, the unit Keras calls callbacks in."""
    callbacks: list = [
        tf.keras.callbacks.BackupAndRestore(
            str(run_dir / BACKUP_DIR),
            save_freq=max(1, round(params.checkpoint_every_steps / steps)),
        ),
        StepCounter(),
    ]
    if chief:  # one writer per run; learning rate and loss per epoch, loss every 50 steps
        callbacks += [
            LearningRateLog(),
            tf.keras.callbacks.TensorBoard(str(run_dir / LOG_DIR), update_freq=50, profile_batch=0),
        ]
    return callbacks


def log_evaluation(run_dir: Path, evaluation: dict, step: int) -> None:
    """The held-out figures of every model and baseline, beside the fit's loss curves."""
    writer = tf.summary.create_file_writer(str(run_dir / LOG_DIR / "evaluation"))
    with writer.as_default():
        for name, figures in evaluation["models"].items():
            for metric, value in figures.items():
                if isinstance(value, float):
                    tf.summary.scalar(f"{name}/{metric}", value, step=step)
    writer.close()


def run_directory(model_dir: Path, identity: dict) -> Path:
    """Where a run keeps checkpoints and logs until it exports: named by what it trains on and
    with which parameters, so running the same command again finds the checkpoints."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return model_dir / ".runs" / digest.hexdigest()[:16]
