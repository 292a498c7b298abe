"""The approximate item index: built only for large catalogs, tuned until it finds 95% of
exact search's top 100 on sample queries, and never shipped below that."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from streamrec.infra.contracts.ann_index import read_ann_index, search_depths, write_ann_index
from streamrec.serving.item_index import ApproximateIndex, ExactIndex
from streamrec.training.item_index_build import FETCH_SIZES, _depths_by_fetch, build_item_index


def clustered(n, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, d))
    items = centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, d))
    queries = centres[rng.integers(0, 50, 200)] + 0.5 * rng.normal(size=(200, d))
    return items.astype(np.float32), queries.astype(np.float32)


def test_small_catalogs_are_searched_exactly_without_sampling_queries():
    items, _ = clustered(500)

    def never():
        raise AssertionError("queries are sampled only when an index is built")

    index, described = build_item_index(items, never, exact_max_items=500)
    assert index is None and described == {"type": "exact", "items": 500}


def test_a_large_catalog_gets_an_hnsw_index_at_the_depth_that_reaches_the_recall(tmp_path):
    items, queries = clustered(5000)
    index, described = build_item_index(items, lambda: queries, exact_max_items=1000)
    assert described["type"] == "hnsw" and described["recall_at_100"] >= 0.95
    assert index.hnsw.efSearch == described["depth"]
    # The shallowest depth found: one an eighth of the way shallower misses the recall.
    index.hnsw.efSearch = described["depth"] - max(1, described["depth"] // 8)
    exact_top = ExactIndex(items)
    shallower = np.mean(
        [len(set(index.search(q[None], 100)[1][0]) & set(exact_top.search(q, 100)[0])) / 100
         for q in queries]
    )  # fmt: skip
    assert shallower < 0.95
    index.hnsw.efSearch = described["depth"]
    write_ann_index(index, tmp_path / "ann.faiss")
    served = ApproximateIndex(
        read_ann_index(tmp_path / "ann.faiss", described), items, search_depths(described)
    )
    exact = ExactIndex(items)
    overlap = np.mean(
        [len(set(served.search(q, 10)[0]) & set(exact.search(q, 10)[0])) / 10 for q in queries]
    )
    assert overlap >= 0.95
    rows, scores = served.search(queries[0], 10)
    assert np.allclose(scores, items[rows] @ queries[0], atol=1e-4)  # exact scores
    assert list(scores) == sorted(scores, reverse=True)


def test_an_index_file_is_mapped_not_copied_and_an_unreadable_one_is_refused(tmp_path):
    items, queries = clustered(3000)
    index, described = build_item_index(items, lambda: queries, exact_max_items=1000)
    path = tmp_path / "ann.faiss"
    write_ann_index(index, path)
    read = read_ann_index(path, described)
    assert str(path) in Path("/proc/self/maps").read_text()  # one copy in the page cache
    assert np.array_equal(read.search(queries[:5], 10)[1], index.search(queries[:5], 10)[1])
    with pytest.raises(RuntimeError, match="cannot read the item index"):
        read_ann_index(tmp_path / "missing.faiss", described)


def test_an_index_that_cannot_reach_the_recall_is_not_shipped():
    items, queries = clustered(3000)
    index, described = build_item_index(items, lambda: queries, 1000, target_recall=1.01)
    assert index is None and described["type"] == "exact"
    assert "recall@100" in described["reason"]


def test_an_ivf_search_that_finds_too_few_items_is_answered_exactly():
    items, queries = clustered(2000)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(16), 16, 40, faiss.METRIC_INNER_PRODUCT)
    ivf.train(items)
    ivf.add(items)
    ivf.nprobe = 1  # one list of about 50 items
    served = ApproximateIndex(ivf, items, [(100, 1)])
    rows, _ = served.search(queries[0], 500)
    assert rows.tolist() == ExactIndex(items).search(queries[0], 500)[0].tolist()


def test_shorter_fetches_search_shallower_at_depths_that_reach_the_recall():
    items, queries = clustered(5000)
    index, described = build_item_index(items, lambda: queries, exact_max_items=1000)
    depths = search_depths(described)
    assert [size for size, _ in depths] == [*FETCH_SIZES, 100]
    assert [d for _, d in depths] == sorted(d for _, d in depths)
    assert depths[0][1] < depths[-1][1]  # the point: a top 10 needs less than a top 100
    exact = ExactIndex(items)
    served = ApproximateIndex(index, items, depths)
    for size, depth in depths:
        recall = np.mean(
            [len(set(served.search(q, size)[0]) & set(exact.search(q, size)[0])) / size
             for q in queries]
        )  # fmt: skip
        assert recall >= 0.95, (size, depth, recall)
        index.hnsw.efSearch = depth  # a fetch of this size searches at this depth
        assert (
            served.search(queries[0], size)[0].tolist()
            == index.search(queries[:1], size)[1][0].tolist()
        )
    at_ten = served.search(queries[0], 10)[0].tolist()
    index.hnsw.efSearch = 1  # per-call parameters: the shared setting is never read
    assert served.search(queries[0], 10)[0].tolist() == at_ten
    assert len(served.search(queries[0], 300)[0]) == 300  # beyond 100: the deepest depth, k


def test_a_longer_fetch_never_searches_shallower_than_a_shorter_one_needed():
    # Sampled recall is noisy: here a top 20 happens to reach the target shallower than a top 15.
    needs = {10: 40, 15: 64, 20: 30} | {size: 128 for size in FETCH_SIZES if size > 20}

    def recall_at(depth: int, fetch: int) -> float:
        return 1.0 if depth >= needs.get(fetch, 200) else 0.0

    depths = _depths_by_fetch(recall_at, deepest=200, target=0.95)
    assert [depths[str(size)] for size in (10, 15, 20, 25)] == [40, 64, 64, 128]
    assert depths["100"] == 200
