"""Evaluating exported versions, as ``streamrec evaluate`` does: on the data the first one saw.

The queries are the hold-out of the (first) version's own training window, read back from its
metadata: the same date range and the same cutoff, so no version is scored on examples it was
trained on. Every version and every baseline is ranked against the same catalog, the items of
that window's training part, in one run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.contracts.item_neighbours import NeighbourBoost
from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.training.data_window import DataWindow, committed_files, load_window
from streamrec.training.evaluate import Evaluation, Scorer
from streamrec.training.exported_model import exported_scorer
from streamrec.training.queries import Catalog
from streamrec.training.seen_items import evaluated_history_length
from streamrec.training.window_popularity import WindowPopularity


def evaluate_versions(
    config: Config,
    versions: Sequence[ModelVersion],
    protocol: str,
    ks: Sequence[int],
    exclude_seen: bool,
) -> dict:
    """Metrics of ``versions`` (named ``version N``) and the baselines on the first's hold-out."""
    # Each version reads as much of the history as it was trained for (longer histories are
    # cut to its length), the baselines read the longest, and seen items are left out of the
    # whole history serving reads.
    length = evaluated_history_length(
        config, exclude_seen, *(int(v.metadata().get("history_length", 0)) for v in versions)
    )
    window = version_window(config, versions[0], length)
    train = window.train_mask
    catalog = Catalog(np.unique(window.events[spec.ITEM_ID][train]))
    evaluation = Evaluation.prepare(window, catalog, protocol, exclude_seen)
    if len(evaluation.queries) == 0:
        raise StreamrecError(
            f"version {versions[0].version}'s window holds no held-out examples to evaluate on"
        )
    popularity = WindowPopularity.of(window, catalog)
    scorers: list[Scorer] = [exported_scorer(v, catalog, popularity) for v in versions]
    result = evaluation.run(scorers, ks)
    result["window"] = window.describe()
    result["settings"] = {f"version {v.version}": version_settings(v) for v in versions}
    return result


_RECIPE = (
    "query_encoder", "embedding_dim", "softmax", "temperature", "logq", "extra_negatives",
    "blocks", "heads", "dropout", "learning_rate", "batch_size", "epochs", "patience", "refit",
)  # fmt: skip


def version_settings(version: ModelVersion) -> dict:
    """What a version was trained with, as a report names it: the recipe's settings, its
    history length and the epochs its fit ran."""
    metadata = version.metadata()
    parameters = metadata.get("parameters", {})
    settings = {name: parameters[name] for name in _RECIPE if name in parameters}
    settings["history_length"] = metadata.get("history_length")
    fit = metadata.get("fit", {})
    if "epochs_run" in fit:
        settings["epochs_run"] = fit["epochs_run"]
        settings["best_epoch"] = fit["best_epoch"]
    if "refit_epochs" in fit:
        settings["refit_epochs"] = fit["refit_epochs"]
    prior = PopularityPrior.from_metadata(metadata)
    if prior is not None:
        settings["popularity_prior"] = prior.to_metadata()
    neighbours = NeighbourBoost.from_metadata(metadata)
    if neighbours is not None:
        settings["item_neighbours"] = neighbours.to_metadata()
    return settings


def version_window(
    config: Config, version: ModelVersion, history_length: int | None = None
) -> DataWindow:
    data = version.metadata().get("data", {})
    if "holdout_from_timestamp" not in data:
        raise StreamrecError(
            f"model version {version.version} records no hold-out window; it was trained by an "
            "older streamrec, retrain it to evaluate it"
        )
    files = committed_files(config, data["start_date"], data["end_date"])
    length = history_length or config.features.history_length
    return load_window(files, length, 0.0, cutoff=int(data["holdout_from_timestamp"]))
