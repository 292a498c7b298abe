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
    assert fetches == [75, 100]  # 3 / (4 allowed in 100), then 4 times more


def test_catalog_filters_scale_the_first_fetch_by_their_share_of_the_catalog():
    search, fetches = counted_search()
    unavailable = frozenset(ITEMS[0:100:2].tolist())  # every other item: half the catalog
    admitted = ItemFilter(excluded=frozenset({"i1"}), blocked=(unavailable,))
    top = filtered_top_k(search, QUERY, 3, ITEMS, admitted)
    assert [item for item, _ in top] == ["i3", "i5", "i7"]
    assert fetches == [8]  # (3 + 1 excluded) / half admitted


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
