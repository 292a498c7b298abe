"""The trainer role, a short sequence of named steps:

data window -> vocabulary -> windows -> fit -> evaluate -> export -> gate and promote.

Each step lives in its own module; this one only passes results along and records what was
decided, so that a version's metadata tells where it came from and why it serves or not.
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.contracts.item_neighbours import METADATA_KEY as ITEM_NEIGHBOURS
from streamrec.infra.contracts.item_neighbours import ItemNeighbours
from streamrec.infra.contracts.popularity_prior import METADATA_KEY as POPULARITY_PRIOR
from streamrec.infra.core.config import Config, TrainingConfig
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_model_registry
from streamrec.training.baselines import ItemToItem, item_to_item
from streamrec.training.boost_choice import (
    NeighbourChoice,
    PriorChoice,
    ValidationScores,
    choose_neighbours,
    choose_prior,
)
from streamrec.training.data_window import DataWindow, committed_files, load_window
from streamrec.training.distribution import cluster_role, distribution_strategy
from streamrec.training.evaluate import EmbeddingScorer, Evaluation, ItemBoosts, summed_boosts
from streamrec.training.export import export_model
from streamrec.training.exported_model import exported_scorer, tower_embeddings
from streamrec.training.fit import Fitted, fit
from streamrec.training.fit_callbacks import (
    LOG_DIR,
    CheckpointCopies,
    log_evaluation,
    run_directory,
)
from streamrec.training.gate import Decision, decide
from streamrec.training.item_features import catalog_features
from streamrec.training.item_index_build import build_item_index
from streamrec.training.neighbour_lists import item_neighbours, neighbour_boosts
from streamrec.training.queries import Catalog, Queries
from streamrec.training.refit import (
    REFIT_DIR,
    record_stop,
    recorded_stop,
    refit_params,
    refit_summary,
)
from streamrec.training.seen_items import evaluated_history_length
from streamrec.training.sequences import training_windows
from streamrec.training.vocabulary import Vocabulary
from streamrec.training.window_popularity import WindowPopularity

GATE_PROTOCOL = "temporal"
GATE_KS = (10, 50)
_SAMPLE_QUERIES = 1000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    version: ModelVersion
    decision: Decision
    evaluation: dict


def train(
    config: Config,
    params: TrainingConfig,
    start_date: str | None = None,
    end_date: str | None = None,
    warm_start: bool = False,
    say: Callable[[str], object] = log.info,
) -> TrainingResult | None:
    """Fits, evaluates and exports a new version; promotes it if the gate says so.

    ``warm_start`` continues from the serving version's weights, if one serves. ``say`` gets
    the run's progress, a line at a time (the CLI prints it).

    Returns None on a non-chief worker of a multi-worker run: it only helps the fit.
    """
    started = time.monotonic()
    role = cluster_role()  # a bad TF_CONFIG fails here, before any data is read
    distribution_strategy(params.strategy, role)  # and before TensorFlow runs anything
    length = config.features.history_length
    files = committed_files(config, start_date, end_date)
    # Queries read as much history as serving does, so that every item it leaves out as seen
    # is left out when they are ranked; the model reads its newest ``length``.
    read = evaluated_history_length(config, config.serving.exclude_seen)
    window = load_window(files, read, params.holdout_fraction)
    vocabulary = _vocabulary(window)
    train, validation = window.validation_split(
        params.validation_fraction if params.patience else 0.0
    )
    validation_queries = Queries.from_examples(validation, Catalog(np.asarray(vocabulary.items)))
    say(
        f"train: {vocabulary.users} users, {len(vocabulary.items)} items, {train.sum()} events"
        f" (+{len(validation_queries)} to stop early)"
    )
    registry = open_model_registry(config)
    incumbent = registry.current()
    if warm_start and incumbent is None:  # a schedule's first run: nothing to continue from
        say("warm start: no version serves yet, so this run starts from scratch")
    warm_from = incumbent if warm_start else None
    run_dir = run_directory(
        registry.work_dir(),
        {
            "files": [str(f.path) for f in files],
            "params": asdict(params),
            "length": length,
            "warm_from": warm_from and warm_from.version,
        },
    )
    item_features = catalog_features(config, vocabulary.items, params.item_features)
    say(f"item features: {item_features.describe()}")

    registry.restore_run(run_dir)  # a run restarted on another machine resumes from its copy
    copies = (
        [CheckpointCopies(run_dir, lambda: registry.save_run(run_dir))] if role.is_chief else []
    )

    def fitted_on(mask: np.ndarray, params: TrainingConfig, directory, validation=None):
        windows = _windows(window, mask, vocabulary, length, params)
        return fit(
            windows, vocabulary, length, params, directory, role, warm_from,
            extra_callbacks=copies, item_features=item_features, say=say, validation=validation,
        )  # fmt: skip

    stopped = recorded_stop(run_dir)
    if stopped is None:
        fitted = fitted_on(train, params, run_dir, validation_queries)
        stopped = fitted.summary
    refit = refit_params(params, stopped)
    if refit is not None:
        record_stop(run_dir, stopped)
        registry.save_run(run_dir)
        say(f"refit: {refit.epochs} epochs on the whole training part, validation share included")
        fitted = fitted_on(window.train_mask, refit, run_dir / REFIT_DIR)
        fitted = Fitted(fitted.model, refit_summary(stopped, fitted.summary, refit.epochs))
    if not role.is_chief:
        return None
    model = fitted.model
    catalog = Catalog(np.asarray(vocabulary.items))
    popularity = WindowPopularity.of(window, catalog)
    encode, embeddings = _encoder(model.query_tower, length), model.item_embeddings()
    exclude_seen = config.serving.exclude_seen
    validation = ValidationScores(validation_queries, encode, embeddings)
    item_baseline = _item_baseline(window, window.train_mask, vocabulary)  # the gate's too
    boosts = _chosen_boosts(
        window, train, vocabulary, item_baseline, popularity, params, length, validation,
        exclude_seen, say,
    )  # fmt: skip
    candidate = EmbeddingScorer("candidate", encode, embeddings, boosts.scores)
    evaluation = _evaluate(
        window, catalog, popularity, candidate, incumbent, exclude_seen, item_baseline
    )
    log_evaluation(run_dir, evaluation, step=params.epochs)
    decision = decide(
        evaluation,
        "candidate",
        f"version {incumbent.version}" if incumbent else None,
        params.promotion_metric,
        params.promotion_tolerance,
    )
    metadata = _metadata(
        config, params, window, vocabulary, fitted.summary, evaluation, decision, incumbent
    )
    metadata["item_features"] = {
        **item_features.describe(),
        "category_names": item_features.categories,  # for warm starts
    }
    metadata[POPULARITY_PRIOR] = boosts.prior.describe()
    metadata[ITEM_NEIGHBOURS] = boosts.neighbours.describe()
    ann_index, metadata["item_index"] = build_item_index(
        embeddings,
        lambda: _sample_queries(window, vocabulary, candidate, embeddings),
        params.exact_search_max_items,
    )
    metadata["training_seconds"] = round(time.monotonic() - started, 1)
    version = export_model(
        registry,
        model.query_tower,
        length,
        vocabulary.items,
        embeddings,
        metadata,
        logs=run_dir / LOG_DIR,
        ann_index=ann_index,
        item_neighbours=boosts.lists,
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    registry.drop_run(run_dir)
    if decision.promote:
        registry.promote(version.version, decision.reason)
    return TrainingResult(version, decision, evaluation)


@dataclass(frozen=True)
class _Boosts:
    prior: PriorChoice
    neighbours: NeighbourChoice
    lists: ItemNeighbours | None  # fitted on the whole training part, as exported; None: off
    scores: ItemBoosts | None  # what the gate adds to the candidate's dot products


def _chosen_boosts(
    window: DataWindow,
    fitted: np.ndarray,
    vocabulary: Vocabulary,
    item_baseline: ItemToItem,
    popularity: WindowPopularity,
    params: TrainingConfig,
    length: int,
    validation: ValidationScores,
    exclude_seen: bool,
    say: Callable[[str], None],
) -> _Boosts:
    """The popularity prior, then the neighbour lists' weight, each chosen on the validation
    share (:mod:`.boost_choice`). The lists chosen on are cut from a baseline fitted on the
    events the model was fitted on (``fitted``); the ones exported from ``item_baseline``, the
    whole training part's."""
    temperature = params.temperature
    prior = choose_prior(
        popularity, params.popularity_prior_window, params.popularity_prior_depth,
        temperature, validation, exclude_seen,
    )  # fmt: skip
    say(f"popularity prior: {prior.describe()}")
    prior_scores = popularity.boosts(prior.prior) if prior.prior else None
    per_item = params.neighbours_per_item
    if not per_item:
        return _Boosts(prior, NeighbourChoice(None, {}), None, prior_scores)
    lists = item_neighbours(item_baseline, per_item)
    on_fitted = (
        item_neighbours(_item_baseline(window, fitted, vocabulary), per_item)
        if len(validation.queries)
        else lists
    )
    neighbours = choose_neighbours(
        on_fitted, length, temperature, validation, prior_scores, exclude_seen, per_item
    )
    say(f"item neighbours: {neighbours.describe()}")
    chosen = neighbours.boost
    neighbour_scores = neighbour_boosts(lists, chosen) if chosen and chosen.weight else None
    return _Boosts(prior, neighbours, lists, summed_boosts(prior_scores, neighbour_scores))


def _item_baseline(window: DataWindow, mask: np.ndarray, vocabulary: Vocabulary) -> ItemToItem:
    """The item-to-item baseline (EASE or item-kNN) of the events ``mask`` selects, over the
    exported rows: what the gate ranks against, and what the neighbour lists are cut from."""
    index = Catalog(np.asarray(vocabulary.items)).index()
    items = np.array([index.get(item, -1) for item in window.events[spec.ITEM_ID][mask]])
    return item_to_item(window.events[spec.USER_ID][mask], items, len(vocabulary.items))


def _windows(
    window: DataWindow, mask: np.ndarray, vocabulary: Vocabulary, length: int, params
) -> dict[str, np.ndarray]:
    """The training windows of the events ``mask`` selects (:mod:`.sequences`)."""
    return training_windows(
        *(window.events[name][mask] for name in (spec.USER_ID, spec.ITEM_ID)),
        vocabulary.index(),
        length + 1,
        *(window.events[name][mask] for name in (spec.TIMESTAMP, spec.EVENT_TYPE)),
        window.events[spec.CONTEXT_TOKENS][mask] if params.request_context else None,
    )


def _vocabulary(window: DataWindow) -> Vocabulary:
    train = window.train_mask
    if not train.any():
        raise StreamrecError(
            "the training window holds no examples before its hold-out; widen the date range"
        )
    return Vocabulary.from_events(
        window.events[spec.USER_ID][train], window.events[spec.ITEM_ID][train]
    )


def _encoder(tower: tf.keras.Model, length: int):
    return lambda queries: tower_embeddings(tower, queries, length)


def _sample_queries(
    window: DataWindow, vocabulary: Vocabulary, candidate: EmbeddingScorer, items: np.ndarray
) -> np.ndarray:
    """Query embeddings of up to 1000 held-out examples, to check the item index against
    exact search on the queries it will serve; item embeddings stand in if none are held out."""
    queries = Queries.from_examples(window.holdout, Catalog(np.asarray(vocabulary.items)))
    rng = np.random.default_rng(0)
    if len(queries) == 0:
        return items[rng.choice(len(items), min(len(items), _SAMPLE_QUERIES), replace=False)]
    chosen = rng.choice(len(queries), min(len(queries), _SAMPLE_QUERIES), replace=False)
    return candidate.encode(queries.select(np.sort(chosen)))


def _evaluate(
    window: DataWindow,
    catalog: Catalog,
    popularity: WindowPopularity,
    candidate: EmbeddingScorer,
    incumbent: ModelVersion | None,
    exclude_seen: bool,
    item_baseline: ItemToItem,
) -> dict:
    """The gate's evaluation: as serving answers, so without seen items if it leaves them out,
    and with each version's boosts."""
    scorers = [candidate]
    if incumbent is not None:
        scorers.append(exported_scorer(incumbent, catalog, popularity))
    evaluation = Evaluation.prepare(window, catalog, GATE_PROTOCOL, exclude_seen, item_baseline)
    return evaluation.run(scorers, GATE_KS)


def _metadata(config, params, window, vocabulary, fitted, evaluation, decision, incumbent) -> dict:
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": f"two_tower/{params.query_encoder}",
        "code_version": importlib.metadata.version("streamrec"),
        "feature_spec_version": spec.FEATURE_SPEC_VERSION,
        "history_length": config.features.history_length,
        "embedding_dim": params.embedding_dim,
        "items": len(vocabulary.items),
        "users": vocabulary.users,
        "parent_version": incumbent.version if incumbent else None,
        "data": {"examples_dir": config.examples_location, **window.describe()},
        "parameters": asdict(params),
        "fit": fitted,
        "evaluation": evaluation,
        "promotion": {"promoted": decision.promote, "reason": decision.reason},
    }
