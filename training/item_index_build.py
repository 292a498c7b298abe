"""The approximate item index built at export, so serving can retrieve from large catalogs.

An exact scan costs about 30 ms per query at 1M items x 64 dimensions on this machine, so
large catalogs get a faiss index: HNSW up to a few million items (fast, memory about 1.3x the
embeddings), IVF beyond (smaller, slower to search). Approximate search is only worth it if it
finds what exact search finds, so the index is checked at build time on real query embeddings:
its search depth grows until recall@100 against exact search reaches the target, and the
recall reached is recorded in the version's metadata. An index that cannot reach it is not
shipped, and serving scans exactly. Small catalogs always scan exactly: it is exact and fast.

Serving rarely fetches 100 items: ``k`` plus the user's seen items, a few dozen. Finding 95%
of a shorter top list needs a shallower search (measured at 1M items: recall@10 reached 0.95
at a fifth of the depth recall@100 needed), and search time grows with depth. So the depth
is also tuned for each of :data:`FETCH_SIZES`, and serving searches a fetch of ``n`` items at
the depth tuned for the smallest size that holds it. The sizes are close together where most
fetches fall (k = 10 plus 5 to 20 seen items), because a fetch searches as deep as the next
size up needs: at 1M items a fetch of 24 searched at depth 144 with sizes 20 and 30 only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import faiss
import numpy as np

from streamrec.infra.contracts.ann_index import set_search_depth

RECALL_K = 100
FETCH_SIZES = (10, 15, 20, 25, 30, 40, 50, 60, 80)  # below RECALL_K, each tuned on its own
_HNSW_MAX_ITEMS = 4_000_000
_HNSW_NEIGHBOURS = 32
# How far each insertion looks for its neighbours. A better-linked graph finds as much at a
# shallower search depth: at 1M items x 64, 256 instead of 128 cut the depth for 95% of a top
# 30 from 144 to 104 (searches 0.43 -> 0.35 ms), for twice the build time (220 -> 450 s on two
# cores).
_HNSW_BUILD_DEPTH = 256
_DEPTHS = (16, 32, 64, 128, 256, 512, 1024)


def build_item_index(
    embeddings: np.ndarray,
    sample_queries: Callable[[], np.ndarray],
    exact_max_items: int,
    target_recall: float = 0.95,
) -> tuple[faiss.Index | None, dict]:
    """The index for these item embeddings, or None for exact search, and its description:
    ``type`` (exact, hnsw or ivf), the search ``depth`` (efSearch or nprobe) and the
    ``recall_at_100`` measured on the queries ``sample_queries()`` returns (called only if an
    index is built)."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if len(embeddings) <= exact_max_items:
        return None, {"type": "exact", "items": len(embeddings)}
    queries = sample_queries()
    index, kind = _untuned(embeddings)
    truth = _exact_top(embeddings, queries)

    def recall_at(depth: int, fetch: int = RECALL_K) -> float:
        set_search_depth(index, depth)
        return _recall(index, queries, truth[:, :fetch])

    found = _shallowest_reaching(recall_at, _DEPTHS, target_recall)
    if found is None:
        return None, {
            "type": "exact",
            "items": len(embeddings),
            "reason": f"{kind} did not reach recall@100 {target_recall} at depth {_DEPTHS[-1]}",
        }
    depth, recall = found
    depths = _depths_by_fetch(recall_at, depth, target_recall)
    set_search_depth(index, depth)
    return index, {"type": kind, "items": len(embeddings), "depth": depth, "depths": depths,
                   "recall_at_100": round(recall, 4), "queries": len(queries)}  # fmt: skip


def _depths_by_fetch(
    recall_at: Callable[[int, int], float], deepest: int, target: float
) -> dict[str, int]:
    """The depth for each of :data:`FETCH_SIZES` and :data:`RECALL_K` items, keyed by the
    size (a string: JSON keys), each at most ``deepest`` (the depth for RECALL_K) and at least
    that of every shorter size: a fetch between two sizes searches at the larger one's depth,
    which must then suffice for the smaller one's list too."""
    depths, floor = {}, 0
    for fetch in FETCH_SIZES:
        candidates = [d for d in _DEPTHS if d < deepest] + [deepest]
        found = _shallowest_reaching(partial(recall_at, fetch=fetch), candidates, target)
        floor = max(floor, found[0] if found else deepest)
        depths[str(fetch)] = floor
    return depths | {str(RECALL_K): deepest}


def _shallowest_reaching(
    recall_at: Callable[[int], float], depths: Sequence[int], target: float
) -> tuple[int, float] | None:
    """The shallowest depth (within an eighth of a step of ``depths``) whose recall reaches
    ``target``, and that recall; None if even the deepest misses it."""
    failed = 0
    for depth in depths:
        recall = recall_at(depth)
        if recall >= target:
            return _shallowest(recall_at, failed, depth, recall, target)
        failed = depth
    return None


def _shallowest(
    recall_at: Callable[[int], float], failed: int, passed: int, recall: float, target: float
) -> tuple[int, float]:
    """Narrows the depth between one that missed the target and one that reached it, since
    search time grows with depth: three halvings of the gap, so within an eighth of it."""
    for _ in range(3):
        middle = (failed + passed) // 2
        if middle in (failed, passed):
            break
        found = recall_at(middle)
        if found >= target:
            passed, recall = middle, found
        else:
            failed = middle
    return passed, recall


def _untuned(embeddings: np.ndarray) -> tuple[faiss.Index, str]:
    dim = embeddings.shape[1]
    if len(embeddings) <= _HNSW_MAX_ITEMS:
        index = faiss.IndexHNSWFlat(dim, _HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = _HNSW_BUILD_DEPTH
        index.add(embeddings)
        return index, "hnsw"
    lists = int(4 * math.sqrt(len(embeddings)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(len(embeddings), 64 * lists, replace=False)
    index.train(embeddings[sample])
    index.add(embeddings)
    return index, "ivf"


def _exact_top(embeddings: np.ndarray, queries: np.ndarray) -> np.ndarray:
    exact = faiss.IndexFlatIP(embeddings.shape[1])
    exact.add(embeddings)
    return exact.search(np.ascontiguousarray(queries, dtype=np.float32), RECALL_K)[1]


def _recall(index: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> float:
    found = index.search(np.ascontiguousarray(queries, dtype=np.float32), truth.shape[1])[1]
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
