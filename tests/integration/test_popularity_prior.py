"""A version's boosts, its popularity prior from real Redis windows and its neighbour lists, rank
served as the evaluation ranked them."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from streamrec.infra.contracts.export_layout import HISTORY_PADDING, ModelVersion, write_checksums
from streamrec.infra.devstack.stack import LocalStack
from streamrec.infra.storage import open_online_store, open_result_cache
from streamrec.infra.storage.ports.online_store import HistoryEntry, ItemEvent
from streamrec.serving.recommender import (
    FALLBACK,
    MODEL,
    STORE_UNAVAILABLE,
    RecommendCall,
    Recommender,
)
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.training.exported_model import exported_scorer
from streamrec.training.queries import Catalog, Queries
from streamrec.training.window_popularity import WindowPopularity
from tests.conftest import free_port

pytestmark = pytest.mark.slow  # uses the session's trained model

PRIOR = {"window": "7d", "depth": 40, "weight": 0.4}
NEIGHBOURS = {"history": 50, "per_item": 100, "weight": 0.5}
K = 10


def _boosted_copy(version: ModelVersion, root, boosts: dict) -> ModelVersion:
    """The trained version with ``boosts`` written into its metadata, checksums redone."""
    shutil.copytree(version.root, root)
    metadata = json.loads((root / "metadata.json").read_text())
    metadata.update(boosts)
    (root / "metadata.json").write_text(json.dumps(metadata))
    write_checksums(root)
    return ModelVersion(root)


def _seeded(config, events):
    """Redis windows counting every event, and the last event's user's history:
    ``(store, user, history newest first, now_ms)``."""
    store = open_online_store(config)
    store.add_item_events("all", [ItemEvent(e.item_id, e.timestamp) for e in events])
    now_ms = events[-1].timestamp + 1
    store.advance_item_windows(now_ms)
    user = events[-1].user_id
    mine = [e for e in events if e.user_id == user][-config.features.online_history_length :]
    store.append_history(
        [(user, HistoryEntry(e.timestamp, e.event_id, e.item_id, e.event_type)) for e in mine]
    )
    history = store.recent_history(user, config.features.online_history_length).entries
    assert [e.item_id for e in history] == [e.item_id for e in reversed(mine)]
    return store, user, history, now_ms


def _recommender(config, version, store, now_ms) -> Recommender:
    cache = open_result_cache(dataclasses.replace(config, result_cache=dataclasses.replace(
        config.result_cache, type="none")))  # fmt: skip
    return Recommender(config, RetrievalModel(version), store, cache, clock=lambda: now_ms / 1000)


def _query(user, history, now_ms, catalog):
    """One evaluation query for ``user`` at ``now_ms`` with ``history``, most recent first."""
    index = catalog.index()
    items = np.array([[e.item_id for e in history]])
    return Queries(
        user_ids=np.array([user]),
        histories=items,
        history_index=np.array([[index.get(i, -1) for i in items[0]]]),
        targets=np.array([-1]),
        timestamps=np.array([now_ms]),
        history_times=np.array([[e.timestamp for e in history]]),
        history_types=np.array([[e.event_type for e in history]]),
        contexts=np.array([""], dtype=object),
    )


@pytest.mark.parametrize(
    "boosts",
    [{"popularity_prior": PRIOR}, {"popularity_prior": PRIOR, "item_neighbours": NEIGHBOURS}],
    ids=["prior", "prior-and-neighbours"],
)
def test_served_answers_are_the_evaluated_ranking_with_the_boosts(trained, tmp_path, boosts):
    config, events, result = trained
    config = dataclasses.replace(
        config,
        redis=dataclasses.replace(config.redis, key_prefix=f"test-boosts-{len(boosts)}"),
        serving=dataclasses.replace(config.serving, catalog_refresh_seconds=0),
    )
    store, user, history, now_ms = _seeded(config, events)

    assert result.version.item_neighbours_file.is_file()  # written whatever the weight
    boosted = _boosted_copy(result.version, tmp_path / "models" / "1", boosts)
    served = {}
    for name, version in (("plain", result.version), ("boosted", boosted)):
        recommender = _recommender(config, version, store, now_ms)
        assert (recommender.model.popularity_prior is not None) == (name == "boosted")
        served[name] = recommender.recommend(RecommendCall(user, K)).items
    assert [i for i, _ in served["boosted"]] != [i for i, _ in served["plain"]]
    if "item_neighbours" in boosts:  # the history's items do have lists to add
        model = RetrievalModel(boosted)
        rows = np.unique([model.rows[e.item_id] for e in history if e.item_id in model.rows])
        assert len(model.neighbours.of(rows)[0]) > 0

    catalog = Catalog(np.array(boosted.item_ids_file.read_text().splitlines()))
    times = np.array([e.timestamp for e in events])
    popularity = WindowPopularity(times, np.array([e.item_id for e in events]), catalog)
    scores = exported_scorer(boosted, catalog, popularity).scores(
        _query(user, history, now_ms, catalog), slice(0, 1)
    )[0]
    scores[[catalog.index()[e.item_id] for e in history if e.item_id != HISTORY_PADDING]] = -np.inf
    best = np.argsort(-scores, kind="stable")[:K]
    assert [i for i, _ in served["boosted"]] == catalog.item_ids[best].tolist()
    assert [s for _, s in served["boosted"]] == pytest.approx(scores[best].tolist(), abs=1e-4)


def test_a_version_that_serves_lists_it_lacks_is_refused_in_one_line(trained, tmp_path):
    from streamrec.infra.core.errors import StreamrecError

    _, _, result = trained
    boosted = _boosted_copy(result.version, tmp_path / "1", {"item_neighbours": NEIGHBOURS})
    boosted.item_neighbours_file.unlink()
    with pytest.raises(StreamrecError, match=r"cannot load the item neighbours of .*1") as error:
        RetrievalModel(boosted)
    assert "\n" not in str(error.value)


def test_with_redis_stopped_the_boosts_serve_from_the_counts_and_history_read_last(
    trained, tmp_path
):
    """A private Redis, stopped under a recommender serving both boosts: the prior's counts
    and the user's history are the ones it read last, so the answer does not change."""
    config, events, result = trained
    own = dataclasses.replace(
        config,
        stack=dataclasses.replace(
            config.stack, state_dir=str(tmp_path / "stack"), redis_port=free_port()
        ),
        kafka=dataclasses.replace(config.kafka, bootstrap=config.kafka_bootstrap),
        redis=dataclasses.replace(config.redis, url="", breaker_open_seconds=0.2),
        serving=dataclasses.replace(config.serving, catalog_refresh_seconds=0),
    )
    redis_only = LocalStack(own)
    assert redis_only.up() == ["redis"]
    try:
        store, user, _, now_ms = _seeded(own, events)
        both = {"popularity_prior": PRIOR, "item_neighbours": NEIGHBOURS}
        boosted = _boosted_copy(result.version, tmp_path / "models" / "1", both)
        plain = _recommender(own, result.version, store, now_ms).recommend(RecommendCall(user, K))
        recommender = _recommender(own, boosted, store, now_ms)
        fresh = recommender.recommend(RecommendCall(user, K))
        assert fresh.source == MODEL
        assert [i for i, _ in fresh.items] != [i for i, _ in plain.items]

        assert redis_only.down(only=["redis"]) == ["redis"]
        down = recommender.recommend(RecommendCall(user, K))
    finally:
        redis_only.down()
    assert (down.source, down.fallback_reason) == (FALLBACK, STORE_UNAVAILABLE)
    assert [i for i, _ in down.items] == [i for i, _ in fresh.items]
    assert [s for _, s in down.items] == pytest.approx([s for _, s in fresh.items])
