"""Top-k retrieval with filters applied after it: adaptive over-fetch, ties, exhaustion."""

import numpy as np

from streamrec.serving.item_filter import ItemFilter, filtered_top_k
from streamrec.serving.item_index import ExactIndex

ITEMS = np.array([f"i{n}" for n in range(100)])
# Item n scores 100 - n against the query, so i0 is best and i99 worst.
EMBEDDINGS = np.array([[100.0 - n, 0.0] for n in range(100)], np.float32)
QUERY = np.array([1.0, 0.0], np.float32)


def counted_search():
    index, fetches = ExactIndex(EMBEDDINGS), []

    def search(query, n):
        fetches.append(n)
        return index.search(query, n)

    return search, fetches


def test_exclusions_are_skipped_in_one_fetch():
    search, fetches = counted_search()
    admitted = ItemFilter(excluded=frozenset({"i0", "i2"}))
    top = filtered_top_k(search, QUERY, 3, ITEMS, admitted)
    assert [item for item, _ in top] == ["i1", "i3", "i4"]
    assert [score for _, score in top] == [99.0, 97.0, 96.0]
    assert fetches == [5]


def test_a_small_allowed_set_deep_in_the_ranking_still_fills_k_by_fetching_more():
    search, fetches = counted_search()
    admitted = ItemFilter(allowed=frozenset({"i90", "i95", "i97", "i3"}))
    top = filtered_top_k(search, QUERY, 3, ITEMS, admitted)
    assert [item for item, _ in top] == ["i3", "i90", "i95"]
    assert fetches == [3, 12, 48, 100]


def test_fewer_than_k_only_when_the_catalog_has_no_more():
    search, _ = counted_search()
    admitted = ItemFilter(excluded=frozenset(ITEMS[2:].tolist()))
    assert [item for item, _ in filtered_top_k(search, QUERY, 5, ITEMS, admitted)] == [
        "i0",
        "i1",
    ]


def test_exact_index_breaks_ties_by_row_and_caps_n():
    index = ExactIndex(np.array([[1.0], [2.0], [2.0], [0.5]], np.float32))
    rows, scores = index.search(np.array([1.0], np.float32), 10)
    assert rows.tolist() == [1, 2, 0, 3]
    assert scores.tolist() == [2.0, 2.0, 1.0, 0.5]
    rows, _ = index.search(np.array([1.0], np.float32), 2)
    assert rows.tolist() == [1, 2]
