"""Serving's boosted top k against brute force: the model's top k plus the boosted items hold
the exact answer, whatever the filter."""

import numpy as np
import pytest

from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.serving.item_filter import ItemFilter, filtered_top_k
from streamrec.serving.item_index import ExactIndex
from streamrec.serving.popularity_boost import PopularityBoosts


@pytest.mark.parametrize("seed", range(20))
def test_the_boosted_top_k_is_the_exact_top_k_of_the_boosted_scores(seed):
    rng = np.random.default_rng(seed)
    items = np.array([f"i{n}" for n in range(300)])
    index = ExactIndex(rng.normal(size=(300, 8)).astype(np.float32))
    query = rng.normal(size=8).astype(np.float32)
    counted = rng.choice(400, 60, replace=False)  # some are items the model does not know
    counts = sorted(((f"i{n}", float(rng.integers(1, 500))) for n in counted), key=lambda p: -p[1])
    prior = PopularityPrior("7d", depth=40, weight=float(rng.uniform(0.1, 2.0)))
    admitted = ItemFilter(excluded=frozenset(rng.choice(items, 50, replace=False).tolist()))
    k = int(rng.integers(1, 30))

    rows = {item: row for row, item in enumerate(items)}
    boosts = PopularityBoosts(prior, counts, rows, index.vectors)
    ranked = filtered_top_k(index.search, query, k, items, admitted)
    served = boosts.top_k(ranked, query, admitted, k)

    top = counts[:40]
    boost = dict(zip([i for i, _ in top], prior.boosts([c for _, c in top]), strict=True))
    every = index.scores(query, np.arange(300)) + np.array([boost.get(i, 0.0) for i in items])
    expected = sorted(
        ((item, score) for item, score in zip(items, every, strict=True) if admitted.admits(item)),
        key=lambda pair: -pair[1],
    )[:k]
    assert [item for item, _ in served] == [item for item, _ in expected]
    assert [score for _, score in served] == pytest.approx([score for _, score in expected])


def test_items_beyond_the_depth_or_unknown_to_the_model_get_no_boost():
    counts = [("a", 99.0), ("gone", 50.0), ("b", 9.0), ("c", 5.0)]
    index = ExactIndex(np.eye(3, dtype=np.float32))
    prior = PopularityPrior("1d", 3, 1.0)
    boosts = PopularityBoosts(prior, counts, {"a": 0, "b": 1, "c": 2}, index.vectors)
    assert boosts.items == ["a", "b"]
    assert boosts.rerank([("c", 1.0), ("b", 0.0)]) == [("b", pytest.approx(np.log(10))), ("c", 1.0)]


@pytest.mark.parametrize("first", [1, 5, 99, 100, 150])
def test_boosted_items_are_read_best_first_past_the_sorted_head(first):
    from streamrec.serving.popularity_boost import _best_first

    values = np.random.default_rng(first).integers(0, 30, 100).astype(np.float64)  # with ties
    head = list(_best_first(values, first))
    assert head == sorted(range(100), key=lambda n: -values[n])[: len(head)]
    assert sorted(head) == list(range(100))
