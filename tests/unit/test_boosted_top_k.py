"""Serving's boosted top k against brute force: the model's top k plus the boosted rows, read
largest boost first until none can pass, hold the exact answer, whatever the filter."""

import numpy as np
import pytest

from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.serving.boosted_top_k import _CHUNK, RowBoosts, boosted_ranking, boosted_top_k
from streamrec.serving.item_filter import ItemFilter, filtered_top_k
from streamrec.serving.item_index import ExactIndex
from streamrec.serving.popularity_boost import popularity_boosts

ITEMS = np.array([f"i{n}" for n in range(300)])
ROWS = {item: row for row, item in enumerate(ITEMS)}


def _brute_force(index, query, boost, admitted, k):
    every = index.scores(query, np.arange(len(ITEMS))) + boost
    return sorted(
        ((item, score) for item, score in zip(ITEMS, every, strict=True) if admitted.admits(item)),
        key=lambda pair: -pair[1],
    )[:k]


@pytest.mark.parametrize("seed", range(30))
def test_the_boosted_top_k_is_the_exact_top_k_of_the_boosted_scores(seed):
    rng = np.random.default_rng(seed)
    index = ExactIndex(rng.normal(size=(300, 8)).astype(np.float32))
    query = rng.normal(size=8).astype(np.float32)
    boosted = rng.choice(300, int(rng.integers(0, 250)), replace=False)
    values = rng.exponential(float(rng.uniform(0.1, 3.0)), len(boosted))
    boosts = RowBoosts(boosted, values, index.vectors, shared=bool(seed % 2))
    boost = np.zeros(300)
    boost[boosted] = values
    if seed % 3 == 0:  # a request's boosts added to shared ones, some on the same rows
        more = np.sort(rng.choice(300, int(rng.integers(0, 300)), replace=False))
        added = rng.exponential(1.0, len(more))
        boosts = boosts.plus(more, added)
        boost[more] += added
    admitted = ItemFilter(excluded=frozenset(rng.choice(ITEMS, 50, replace=False).tolist()))
    k = int(rng.integers(1, 40))

    ranked = filtered_top_k(index.search, query, k, ITEMS, admitted)
    served = boosted_top_k(ranked, boosts, query, ROWS, ITEMS, admitted, k)

    expected = _brute_force(index, query, boost, admitted, k)
    assert [item for item, _ in served] == [item for item, _ in expected]
    assert [score for _, score in served] == pytest.approx([score for _, score in expected])


def test_boosts_added_to_boosts_sum_by_row_and_keep_the_gathered_embeddings():
    vectors = np.eye(4, dtype=np.float32)
    gathered = []
    boosts = RowBoosts(
        np.array([2, 0]), np.array([1.0, 0.5]), lambda rows: gathered.append(rows) or vectors[rows],
        shared=True,
    )  # fmt: skip
    more = boosts.plus(np.array([2, 3]), np.array([0.25, 2.0]))
    assert more.rows.tolist() == [0, 2, 3] and more.values.tolist() == [0.5, 1.25, 2.0]
    assert more.of(np.array([0, 1, 2, 3])).tolist() == [0.5, 0.0, 1.25, 2.0]
    query = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    assert more.totals(np.array([2, 0, 1]), query).tolist() == [6.0, 1.5, 4.25]
    assert [rows.tolist() for rows in gathered] == [[0, 2], [3]]  # the shared rows once
    with pytest.raises(ValueError, match="one run"):
        more.plus(np.array([1]), np.array([1.0]))
    assert len(RowBoosts(np.array([1]), np.array([0.0]), lambda rows: vectors[rows])) == 0


def test_boosts_that_outweigh_the_dot_products_are_scored_only_until_none_can_pass():
    rng = np.random.default_rng(0)
    index = ExactIndex(rng.normal(size=(20_000, 8)).astype(np.float32) * 0.01)
    query = rng.normal(size=8).astype(np.float32)
    boosted = rng.choice(20_000, 5_000, replace=False)
    values = rng.exponential(1.0, 5_000)
    read = []
    boosts = RowBoosts(boosted, values, lambda rows: read.append(len(rows)) or index.vectors(rows))
    ranked = filtered_top_k(index.search, query, 10, np.arange(20_000).astype(str), ItemFilter())
    rows = {str(row): row for row in range(20_000)}
    served = boosted_top_k(ranked, boosts, query, rows, np.arange(20_000).astype(str),
                           ItemFilter(), 10)  # fmt: skip
    boost = np.zeros(20_000)
    boost[boosted] = values
    expected = np.argsort(-(index.scores(query, np.arange(20_000)) + boost))[:10]
    assert [int(item) for item, _ in served] == expected.tolist()
    assert sum(read) <= _CHUNK  # the largest boosts; the other rows are never scored


def test_items_beyond_the_depth_or_unknown_to_the_model_get_no_popularity_boost():
    counts = [("a", 99.0), ("gone", 50.0), ("b", 9.0), ("c", 5.0)]
    index = ExactIndex(np.eye(3, dtype=np.float32))
    prior = PopularityPrior("1d", 3, 1.0)
    rows = {"a": 0, "b": 1, "c": 2}
    boosts = popularity_boosts(prior, counts, rows, index.vectors)
    assert boosts.rows.tolist() == [0, 1]
    ranked = boosted_ranking([("c", 1.0), ("b", 0.0)], boosts, rows)
    assert ranked == [("b", pytest.approx(np.log(10))), ("c", 1.0)]
