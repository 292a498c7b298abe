"""The ranking role's decisions, with fakes for the model, the online store and the cache:
freshness, filters, cold start and serving through an online-store outage."""

import dataclasses

import numpy as np
import pytest

from streamrec.infra.contracts.item_neighbours import ItemNeighbours, NeighbourBoost
from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.infra.core.config import Config, FeaturesConfig, ServingConfig
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage.ports.online_store import HistoryEntry, Ranking, UserHistory
from streamrec.infra.storage.ports.result_cache import RankedItems
from streamrec.serving.catalog_view import StoreSnapshots
from streamrec.serving.item_filter import filtered_top_k
from streamrec.serving.item_index import ExactIndex
from streamrec.serving.recommender import (
    CACHE,
    FALLBACK,
    MODEL,
    NO_HISTORY,
    STORE_UNAVAILABLE,
    NothingToServe,
    RecommendCall,
    Recommender,
)

ITEMS = [f"i{n}" for n in range(20)]


class FakeModel:
    """Items on a circle; a history's query points at its newest item's neighbours."""

    version = 3
    history_length = 5
    popularity_prior = None
    neighbour_boost = None
    neighbours = None

    def __init__(self):
        angles = np.arange(len(ITEMS)) * 2 * np.pi / len(ITEMS)
        self.item_ids = np.array(ITEMS)
        self.rows = {item: row for row, item in enumerate(ITEMS)}
        self.index = ExactIndex(np.stack([np.cos(angles), np.sin(angles)], 1))
        self.embeddings = self.index._embeddings
        self.queries = 0
        self.contexts = []

    def query_embedding(self, user_id, history, request_time_ms, context=()):
        self.queries += 1
        self.contexts.append(tuple(context))
        if not history:
            return np.zeros(2, np.float32)
        return self.embeddings[ITEMS.index(history[0].item_id)]

    def top_k(self, query, k, admitted):
        return filtered_top_k(self.index.search, query, k, self.item_ids, admitted)


class FakeStore:
    def __init__(self):
        self.down = False
        self.histories: dict[str, list[HistoryEntry]] = {}
        self.unavailable: set[str] = set()
        self.categories: dict[str, set[str]] = {}
        self.popular = [("i7", 50.0), ("i8", 40.0), ("i9", 30.0)]

    def _check(self):
        if self.down:
            raise StoreUnavailable("Redis is unreachable")

    def recent_history(self, user_id, limit):
        self._check()
        return UserHistory.of(list(reversed(self.histories.get(user_id, [])))[:limit])

    def unavailable_items(self):
        self._check()
        return set(self.unavailable)

    def items_in_categories(self, categories):
        self._check()
        return set().union(*(self.categories.get(c, set()) for c in categories))

    def popular_items(self, window, k):
        self._check()
        return Ranking(self.popular[:k], current_to=1)

    def add(self, user, item):
        entries = self.histories.setdefault(user, [])
        entries.append(HistoryEntry(len(entries) + 1, f"{user}-e{len(entries)}", item))


class FakeCache:
    def __init__(self):
        self.entries = {}

    def get(self, key):
        return self.entries.get(key)

    def put(self, key, ranked: RankedItems):
        self.entries[key] = ranked


@pytest.fixture
def parts():
    config = Config(
        features=FeaturesConfig(popularity_windows="1h,1d,7d"),
        serving=ServingConfig(catalog_refresh_seconds=0),  # read the store every time
    )
    store, cache, model = FakeStore(), FakeCache(), FakeModel()
    return Recommender(config, model, store, cache, clock=lambda: 1000.0), store, cache, model


def names(answer):
    return [item for item, _ in answer.items]


def test_a_new_event_changes_the_next_answer_and_never_hits_an_older_cache_entry(parts):
    recommender, store, cache, _ = parts
    store.add("u", "i0")
    first = recommender.recommend(RecommendCall("u", 3))
    again = recommender.recommend(RecommendCall("u", 3))
    assert (first.source, again.source) == (MODEL, CACHE)
    assert names(again) == names(first) == ["i1", "i19", "i2"]  # i0 itself was seen
    store.add("u", "i10")
    fresh = recommender.recommend(RecommendCall("u", 3))
    assert fresh.source == MODEL
    assert set(names(fresh)[:2]) == {"i9", "i11"}  # the newest item's neighbours
    assert len(cache.entries) == 2


def test_seen_items_are_left_out_by_default_and_kept_when_configured(parts):
    recommender, store, _, model = parts
    store.add("u", "i1")
    store.add("u", "i0")
    assert "i1" not in names(recommender.recommend(RecommendCall("u", 3)))
    config = Config(serving=ServingConfig(exclude_seen=False))
    keep_seen = Recommender(config, model, store, FakeCache())
    assert names(keep_seen.recommend(RecommendCall("u", 3)))[0] == "i0"


def test_exclusions_categories_and_unavailable_items_are_filtered(parts):
    recommender, store, _, _ = parts
    store.add("u", "i0")
    store.unavailable = {"i1"}
    store.categories = {"even": {f"i{n}" for n in range(0, 20, 2)}, "big": {"i18", "i2"}}
    call = RecommendCall(
        "u", 3, exclude_item_ids=("i19",), include_categories=("even",), exclude_categories=("big",)
    )
    assert names(recommender.recommend(call)) == ["i4", "i16", "i6"]


def test_an_item_made_unavailable_is_not_served_from_the_cache(parts):
    recommender, store, _, _ = parts
    store.add("u", "i0")
    assert names(recommender.recommend(RecommendCall("u", 2))) == ["i1", "i19"]
    store.unavailable = {"i1"}
    answer = recommender.recommend(RecommendCall("u", 2))
    assert answer.source == MODEL and names(answer) == ["i19", "i2"]


def test_a_cached_answer_is_served_only_while_the_categories_still_admit_it(parts):
    recommender, store, _, _ = parts
    store.add("u", "i0")
    store.categories = {"even": {f"i{n}" for n in range(0, 20, 2)}, "big": set()}
    included = RecommendCall("u", 2, include_categories=("even",))
    excluded = RecommendCall("u", 2, exclude_categories=("big",))
    assert names(recommender.recommend(included)) == ["i2", "i18"]
    assert names(recommender.recommend(excluded)) == ["i1", "i19"]
    assert recommender.recommend(included).source == CACHE
    assert recommender.recommend(excluded).source == CACHE
    store.categories = {"even": {f"i{n}" for n in range(0, 20, 2)} - {"i2"}, "big": {"i1"}}
    for call, expected in ((included, ["i18", "i4"]), (excluded, ["i19", "i2"])):
        answer = recommender.recommend(call)
        assert answer.source == MODEL and names(answer) == expected


def test_a_user_without_history_gets_popular_items_then_the_rest_of_the_catalog(parts):
    recommender, store, _, model = parts
    store.unavailable = {"i8"}
    answer = recommender.recommend(RecommendCall("new", 4))
    assert (answer.source, answer.fallback_reason) == (FALLBACK, NO_HISTORY)
    assert names(answer) == ["i7", "i9", "i0", "i1"]
    assert model.queries == 0


def test_cold_start_reads_the_rest_of_the_catalog_only_as_far_as_it_needs(parts):
    recommender, _, _, model = parts
    read = []

    class CountedIds:  # a catalog of a million items would cost every cold start its copy
        def __iter__(self):
            for item in ITEMS:
                read.append(item)
                yield np.str_(item)

    model.item_ids = CountedIds()
    assert names(recommender.recommend(RecommendCall("new", 5))) == ["i7", "i8", "i9", "i0", "i1"]
    assert len(read) == 2


def test_with_the_store_down_known_users_keep_the_model_and_others_get_remembered_popularity(
    parts,
):
    recommender, store, _, _ = parts
    store.add("u", "i0")
    before = names(recommender.recommend(RecommendCall("u", 3)))
    recommender.recommend(RecommendCall("new", 3))  # reads popularity once
    store.down = True
    known = recommender.recommend(RecommendCall("u", 3))
    assert (known.source, known.fallback_reason) == (FALLBACK, STORE_UNAVAILABLE)
    assert names(known) == before  # the remembered history: i0 still left out as seen
    stranger = recommender.recommend(RecommendCall("stranger", 2))
    assert (stranger.source, names(stranger)) == (FALLBACK, ["i7", "i8"])
    store.down = False
    assert recommender.recommend(RecommendCall("u", 3)).source in (MODEL, CACHE)


def test_nothing_to_serve_when_the_store_was_never_read(parts):
    recommender, store, _, _ = parts
    store.down = True
    with pytest.raises(NothingToServe, match="no history and no popular items in memory"):
        recommender.recommend(RecommendCall("new", 3))
    with pytest.raises(NothingToServe, match="category filters"):
        recommender.recommend(RecommendCall("new", 3, include_categories=("even",)))


def test_rank_orders_known_candidates_and_puts_unknown_ones_last(parts):
    recommender, store, _, model = parts
    model.rows = {item: row for row, item in enumerate(ITEMS)}
    model.rank = lambda query, candidates: real_rank(model, query, candidates)
    store.add("u", "i0")
    answer = recommender.rank("u", ["i10", "nope", "i1", "i0", "i1"])
    assert names(answer) == ["i0", "i1", "i10", "nope"]
    assert answer.unknown_item_ids == ("nope",)
    assert answer.items[-1][1] == float("-inf")


def test_the_requests_context_reaches_the_query_tower_as_sorted_tokens(parts):
    recommender, store, _, model = parts
    model.rows = {item: row for row, item in enumerate(ITEMS)}
    model.rank = lambda query, candidates: real_rank(model, query, candidates)
    store.add("u", "i0")
    # Sorted as tokens: "a.b=2" before "a=1", as the feature job writes them.
    recommender.recommend(RecommendCall("u", 3, context=(("a", "1"), ("a.b", "2"))))
    recommender.rank("u", ["i1"], {"surface": "deals"})
    assert model.contexts == [("a.b=2", "a=1"), ("surface=deals",)]


def test_a_prior_lifts_items_bought_often_lately_but_never_a_seen_one(parts):
    recommender, store, _, model = parts
    model.popularity_prior = PopularityPrior("7d", depth=3, weight=1.0)
    model.rank = lambda query, candidates: real_rank(model, query, candidates)
    store.popular = [("i10", 1000.0), ("i0", 900.0), ("i3", 1.0)]
    store.add("u", "i0")
    answer = recommender.recommend(RecommendCall("u", 3))
    # i10 is opposite i0 (dot -1) but boosted by ln 1001; i3 (dot 0.59) by ln 2 passes i1
    # (0.95); i0 is the most counted, but seen.
    assert names(answer) == ["i10", "i3", "i1"]
    assert answer.items[0][1] == pytest.approx(-1 + np.log(1001))
    assert names(recommender.rank("u", ["i1", "i10"])) == ["i10", "i1"]
    store.down = True  # the counts read last still boost
    assert names(recommender.recommend(RecommendCall("u", 3))) == ["i10", "i3", "i1"]


def test_without_counts_ever_read_a_prior_is_left_out_rather_than_refusing(parts):
    recommender, store, _, model = parts
    model.popularity_prior = PopularityPrior("30d", depth=3, weight=1.0)  # not a store window
    store.popular_items = lambda window, k: (_ for _ in ()).throw(ValueError("no window"))
    store.add("u", "i0")
    assert names(recommender.recommend(RecommendCall("u", 3))) == ["i1", "i19", "i2"]


def _lists(pairs):
    """ItemNeighbours over ITEMS from ``{item: [(neighbour, weight)]}``."""
    indptr, indices, weights = [0], [], []
    for item in ITEMS:
        for neighbour, weight in pairs.get(item, []):
            indices.append(ITEMS.index(neighbour))
            weights.append(weight)
        indptr.append(len(indices))
    return ItemNeighbours(
        np.array(indptr), np.array(indices, np.int32), np.array(weights, np.float32)
    )


def test_neighbour_lists_lift_what_goes_with_the_history_summed_with_the_prior(parts):
    recommender, store, _, model = parts
    model.neighbours = _lists({"i0": [("i10", 2.5), ("i5", 0.2)], "i1": [("i10", 9.0)]})
    model.neighbour_boost = NeighbourBoost(history=2, per_item=100, weight=1.0)
    model.rank = lambda query, candidates: real_rank(model, query, candidates)
    store.add("u", "i0")
    # i10 is opposite i0 (dot -1), lifted by 2.5 past i1 (0.95); i5 (dot 0) by 0.2 only.
    assert names(recommender.recommend(RecommendCall("u", 3))) == ["i10", "i1", "i19"]
    assert names(recommender.rank("u", ["i1", "i10"])) == ["i10", "i1"]
    model.popularity_prior = PopularityPrior("7d", depth=3, weight=1.0)
    store.popular = [("i5", 3.0)]
    # i5: ln 4 (1.39) from the prior plus 0.2 passes i10's 1.5; either alone would not.
    answer = recommender.recommend(RecommendCall("u", 3, exclude_item_ids=("i1",)))
    assert names(answer) == ["i5", "i10", "i19"]
    assert answer.items[0][1] == pytest.approx(np.log(4) + 0.2, abs=1e-6)


def test_only_the_newest_history_items_bring_their_neighbours(parts):
    recommender, store, _, model = parts
    model.neighbours = _lists({"i0": [("i10", 5.0)]})
    model.neighbour_boost = NeighbourBoost(history=1, per_item=100, weight=1.0)
    store.add("u", "i0")
    store.add("u", "i1")  # now the newest; i0 is beyond the one item read
    assert "i10" not in names(recommender.recommend(RecommendCall("u", 3)))
    model.neighbour_boost = NeighbourBoost(history=2, per_item=100, weight=1.0)
    model.version = 4  # another version, so not answered from the cache
    assert names(recommender.recommend(RecommendCall("u", 3)))[0] == "i10"


def real_rank(model, query, candidates):
    from streamrec.serving.retrieval_model import RetrievalModel

    return RetrievalModel.rank(model, query, candidates)


def test_snapshots_serve_a_stale_answer_only_while_the_store_is_down():
    now = [0.0]
    snapshots = StoreSnapshots(max_age=5, clock=lambda: now[0])
    reads = []

    def read():
        reads.append(now[0])
        if now[0] >= 20:
            raise StoreUnavailable("down")
        return len(reads)

    assert snapshots.get("k", read) == 1
    now[0] = 4
    assert snapshots.get("k", read) == 1 and reads == [0]
    now[0] = 6
    assert snapshots.get("k", read) == 2
    now[0] = 30
    assert snapshots.get("k", read) == 2  # stale, but the store is down
    with pytest.raises(StoreUnavailable):
        snapshots.get("other", read)


def test_one_thread_reads_a_stale_snapshot_again_while_the_others_answer_from_it():
    import threading

    now = [0.0]
    snapshots = StoreSnapshots(max_age=5, clock=lambda: now[0])
    assert snapshots.get("k", lambda: "old") == "old"
    now[0] = 6
    reading, release = threading.Event(), threading.Event()

    def slow_read():
        reading.set()
        release.wait(5)
        return "new"

    refresher = threading.Thread(target=lambda: snapshots.get("k", slow_read))
    refresher.start()
    assert reading.wait(5)
    second_reads = []
    assert snapshots.get("k", lambda: second_reads.append(1) or "other") == "old"
    assert second_reads == []  # not read twice at once
    release.set()
    refresher.join(5)
    assert snapshots.get("k", lambda: "other") == "new"


def test_an_unknown_popularity_window_is_a_config_error():
    from streamrec.infra.core.config import load_config
    from streamrec.infra.core.errors import StreamrecError

    with pytest.raises(StreamrecError, match=r"serving.popularity_window='2d' is not one of"):
        load_config(environ={"STREAMREC_SERVING_POPULARITY_WINDOW": "2d"})
    assert dataclasses.replace(ServingConfig(), popularity_window="7d")
