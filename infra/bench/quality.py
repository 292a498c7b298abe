"""``streamrec bench quality``: the training recipe, one change at a time, on your examples.

Every step trains one version on the configured committed examples (import and run the feature
job first): the default recipe, the recipe streamrec had before it, and the default with one
setting changed. Each version goes to a registry of the benchmark's own
(``<state_dir>/bench-quality/models``), so the registry that serves is never touched. Then all
versions and the baselines are ranked on the same held-out queries in one run, under two
protocols:

- ``temporal``: every held-out example, as the promotion gate and ``streamrec evaluate`` do;
- ``leave-last-out`` with seen items removed: each user's last held-out example, the split of
  the published sequential-recommendation results.

A step is better than the default only if the interval of its paired difference from it lies
above 0; the default is the best measured when no step's does (docs/quality.md).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence

from streamrec.infra.bench.recipe_steps import RecipeStep
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_model_registry
from streamrec.training.trainer import train
from streamrec.training.version_evaluation import evaluate_versions, version_settings

_K = 10


def run_quality_benchmark(config: Config, steps: Sequence[RecipeStep], say: Callable) -> dict:
    models_dir = config.state_dir / "bench-quality" / "models"
    shutil.rmtree(models_dir, ignore_errors=True)
    trained = []
    for step in steps:
        step_config = _step_config(config, step, models_dir)
        say(f"step {step.name}: training")
        started = time.monotonic()
        result = train(step_config, step_config.training, say=say)
        if result is None:
            raise StreamrecError("bench quality runs on one worker; unset TF_CONFIG")
        trained.append((step, result.version, round(time.monotonic() - started, 1)))
        say(f"step {step.name}: version {result.version.version} in {trained[-1][2]} s")
    longest = max(_step_config(config, step, models_dir).features.history_length for step in steps)
    evaluation_config = _with_history(config, longest)
    evaluation_config = _with_model_dir(evaluation_config, models_dir)
    versions = [version for _, version, _ in trained]
    protocols = {
        "temporal": evaluate_versions(evaluation_config, versions, "temporal", [_K], False),
        "leave_last_out_unseen": evaluate_versions(
            evaluation_config, versions, "leave-last-out", [_K], True
        ),
    }
    return _table(trained, protocols, open_model_registry(evaluation_config))


def _step_config(config: Config, step: RecipeStep, models_dir) -> Config:
    params = dataclasses.replace(config.training, **step.training)
    stepped = dataclasses.replace(config, training=params)
    if step.history_length is not None:
        stepped = _with_history(stepped, step.history_length)
    return _with_model_dir(stepped, models_dir)


def _with_history(config: Config, length: int) -> Config:
    online = max(length, config.features.online_history_length)
    features = dataclasses.replace(
        config.features, history_length=length, online_history_length=online
    )
    return dataclasses.replace(config, features=features)


def _with_model_dir(config: Config, models_dir) -> Config:
    training = dataclasses.replace(config.training, model_dir=str(models_dir))
    return dataclasses.replace(config, training=training)


def _table(trained: list, protocols: dict[str, dict], registry) -> dict:
    """Per step: its settings, training time and, per protocol, recall and NDCG at 10 with
    intervals, the ratio to EASE, and the paired difference from the default."""
    steps = []
    default_name = f"version {trained[0][1].version}"
    for step, version, seconds in trained:
        name = f"version {version.version}"
        row = {
            "step": step.name,
            "version": version.version,
            "training_seconds": seconds,
            "settings": version_settings(registry.version(version.version)),
        }
        for protocol, result in protocols.items():
            row[protocol] = _figures(result, name, default_name)
        steps.append(row)
    baselines = {
        protocol: {
            name: _figures(result, name, None)
            for name in result["models"]
            if not name.startswith("version ")
        }
        for protocol, result in protocols.items()
    }
    window = next(iter(protocols.values()))["window"]
    queries = {protocol: result["queries"] for protocol, result in protocols.items()}
    return {"window": window, "queries": queries, "baselines": baselines, "steps": steps}


def _figures(result: dict, name: str, default: str | None) -> dict:
    models = result["models"]
    figures = models[name]
    recall, ndcg = f"recall@{_K}", f"ndcg@{_K}"
    row = {
        recall: round(figures[recall], 4),
        f"{recall}_interval": _rounded(figures["intervals"][recall]),
        ndcg: round(figures[ndcg], 4),
        f"{ndcg}_interval": _rounded(figures["intervals"][ndcg]),
    }
    if "ease" in models and models["ease"][recall] > 0:
        row["vs_ease"] = round(figures[recall] / models["ease"][recall], 3)
    if default is not None and name != default:
        # differences are of the first version (the default) against the others
        difference = result["differences"]["against"][name][recall]
        row[f"default_minus_this_{recall}"] = round(difference["difference"], 4)
        row["interval"] = _rounded(difference["interval"])
    return row


def _rounded(interval: list[float] | None) -> list[float] | None:
    return [round(value, 4) for value in interval] if interval else None
