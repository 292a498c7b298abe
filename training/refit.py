"""The refit after early stopping: the chosen number of epochs, on the whole training part.

Early stopping holds out the newest share of the training part to choose when to stop, and
that share is the part nearest to what serving will be asked: a model that never trains on it
learns last month's trends from the month before. Once the epoch is chosen, the refit trains a
fresh model for that many epochs on every training example, the validation share included, and
that model is the one evaluated and exported, at the cost of the chosen epochs once more.

It is off by default because it measured no better where it mattered: on the retail year with
20 items of history, 30 fixed epochs on the whole training part beat early stopping (recall@10
0.0291 against 0.0271), but with the default 50 items the refit ranked as early stopping alone
did (0.0291 against 0.0300, the paired difference's interval around 0; docs/quality.md).

A run killed during the refit resumes it: the first fit's outcome is written to the run
directory before the refit starts, and the refit checkpoints in a directory of its own.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from streamrec.infra.core.config import TrainingConfig
from streamrec.training.early_stopping import SUMMARY

STOPPED_FILE = "stopped_early.json"
REFIT_DIR = "refit"


def refit_params(params: TrainingConfig, summary: dict) -> TrainingConfig | None:
    """The settings of the refit after a fit that stopped early with ``summary``, or None when
    there is nothing to refit (no early stopping, or the refit is switched off)."""
    if not params.refit or "best_epoch" not in summary:
        return None
    return dataclasses.replace(params, epochs=int(summary["best_epoch"]), patience=0)


def record_stop(run_dir: Path, summary: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STOPPED_FILE).write_text(json.dumps(summary))


def recorded_stop(run_dir: Path) -> dict | None:
    """The first fit's summary, if a killed run got as far as its refit."""
    path = run_dir / STOPPED_FILE
    return json.loads(path.read_text()) if path.exists() else None


def refit_summary(stopped: dict, refit: dict, epochs: int) -> dict:
    """One summary of both fits: the refit's loss and data, where early stopping stopped, and
    the steps of both (planned: the first fit's ceiling and the refit's epochs)."""
    return {
        **refit,
        **{name: stopped[name] for name in SUMMARY},
        "refit_epochs": epochs,
        "resumed": bool(stopped["resumed"] or refit["resumed"]),
        "steps_planned": stopped["steps_planned"] + refit["steps_planned"],
        "steps_run": stopped["steps_run"] + refit["steps_run"],
    }
