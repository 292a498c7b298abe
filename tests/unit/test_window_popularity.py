"""The evaluation's replay of a popularity window, and the prior's weight chosen on it."""

import numpy as np

from streamrec.infra.contracts.popularity_prior import PopularityPrior, window_step_ms
from streamrec.training.boost_choice import ValidationScores, choose_prior
from streamrec.training.queries import Catalog, Queries
from streamrec.training.window_popularity import WindowPopularity

MINUTE = 60_000


def _popularity(events, catalog=("a", "b", "c", "x", "y")):
    times, items = zip(*events, strict=True)
    return WindowPopularity(np.array(times), np.array(items), Catalog(np.array(catalog)))


def _counts(popularity, at, window="1h", depth=10, catalog=("a", "b", "c", "x", "y")):
    row = popularity.counts(np.array([at]), window, depth)[0]
    return {item: float(count) for item, count in zip(catalog, row, strict=True) if count}


def test_the_window_slides_in_steps_as_the_online_store_counts():
    assert window_step_ms(3_600_000) == 2 * MINUTE  # an hour's 24th, in whole minutes
    popularity = _popularity([(0, "a"), (2 * MINUTE, "a"), (50 * MINUTE, "b"), (70 * MINUTE, "c")])
    # At 61 min the window still counts from the step that began at 2 min; at 62 from 4 min.
    assert _counts(popularity, 61 * MINUTE) == {"a": 1.0, "b": 1.0}
    assert _counts(popularity, 62 * MINUTE) == {"b": 1.0}


def test_an_event_at_the_query_time_is_not_counted_for_it():
    popularity = _popularity([(MINUTE, "a"), (5 * MINUTE, "a"), (5 * MINUTE, "b")])
    assert _counts(popularity, 5 * MINUTE) == {"a": 1.0}


def test_only_the_most_counted_keep_their_counts_ties_to_the_greater_id():
    events = [(1, "x"), (2, "x"), (3, "y"), (4, "y"), (5, "a"), (6, "zz"), (7, "zz"), (8, "zz")]
    popularity = _popularity(events)
    # zz, unknown to the catalog, still takes the first place; y beats x on the tie.
    assert _counts(popularity, 10, depth=2) == {"y": 2.0}
    assert _counts(popularity, 10, depth=3) == {"x": 2.0, "y": 2.0}


def _queries(targets, times):
    n = len(targets)
    return Queries(
        user_ids=np.array([f"u{i}" for i in range(n)]),
        histories=np.full((n, 1), ""),
        history_index=np.full((n, 1), -1),
        targets=np.array(targets),
        timestamps=np.array(times, np.int64),
        history_times=np.full((n, 1), -1),
        history_types=np.full((n, 1), ""),
        contexts=np.array([""] * n, dtype=object),
    )


def test_a_weight_is_chosen_only_where_the_counts_predict_the_next_item():
    catalog = ("a", "b", "c", *(f"d{n}" for n in range(10)))  # more than the 10 ranked
    # "b" is bought all day; each query then buys b (counts predict) or c (they do not).
    events = [(n * MINUTE, "b") for n in range(1, 30)] + [(MINUTE, "c")]
    popularity = _popularity(events, catalog)
    items = np.eye(len(catalog), dtype=np.float32)
    times = [40 * MINUTE] * 8
    predicted = _queries([1] * 8, times)
    unpredicted = _queries([2] * 8, times)
    encode = lambda queries: np.tile(items[2], (len(queries), 1))  # noqa: E731 -- points at c

    # Without a boost b ties with 11 other items at 0 and misses the top 10; any boost lifts it.
    chosen = choose_prior(
        popularity, "1d", 10, 0.1, ValidationScores(predicted, encode, items), True
    )
    assert chosen.recalls == {0.0: 0.0, 0.25: 1.0, 0.5: 1.0, 1.0: 1.0, 2.0: 1.0}
    assert chosen.prior == PopularityPrior("1d", 10, 0.025)  # the least of the best, times T
    unpredicted_scores = ValidationScores(unpredicted, encode, items)
    unchosen = choose_prior(popularity, "1d", 10, 0.1, unpredicted_scores, True)
    assert unchosen.prior is None and unchosen.recalls[0.0] == 1.0
    assert unchosen.describe()["weight"] == 0.0


def test_sliding_over_unordered_query_times_counts_as_each_window_alone():
    rng = np.random.default_rng(3)
    catalog = tuple(f"c{n:02d}" for n in range(30))
    ids = np.array([f"c{n:02d}" for n in rng.integers(0, 40, 3000)])  # some outside the catalog
    times = rng.integers(0, 500 * MINUTE, len(ids))
    popularity = WindowPopularity(times, ids, Catalog(np.array(catalog)))
    at = rng.integers(0, 520 * MINUTE, 200)  # in no order, some windows empty or disjoint
    found = popularity.counts(at, "1h", 8)
    for row, now in enumerate(at.tolist()):
        start = (now - 60 * MINUTE) // (2 * MINUTE) * (2 * MINUTE) + 2 * MINUTE
        inside = ids[(times >= start) & (times < now)]
        values, counts = np.unique(inside, return_counts=True)
        ranked = sorted(zip(counts.tolist(), values.tolist(), strict=True), reverse=True)[:8]
        expected = {item: float(n) for n, item in ranked if item in catalog}
        assert _row(found[row], catalog) == expected


def _row(values, catalog):
    return {item: float(v) for item, v in zip(catalog, values, strict=True) if v}
