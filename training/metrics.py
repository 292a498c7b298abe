"""Full-ranking retrieval metrics: every query is scored against the whole catalog.

Sampled metrics (ranking the target among a few random negatives) overstate quality and can
even reorder models; with catalogs of this size exact ranking is affordable, so it is the only
kind computed here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_CHUNK = 2048


def target_ranks(queries: np.ndarray, items: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The 0-based rank of each target among all items (ties count against the target).

    ``targets`` holds row indices into ``items``; a negative index (an item the model has no
    embedding for) ranks last.
    """
    ranks = np.full(len(targets), len(items), dtype=np.int64)
    for start in range(0, len(queries), _CHUNK):
        scores = queries[start : start + _CHUNK] @ items.T
        chunk_targets = targets[start : start + _CHUNK]
        known = chunk_targets >= 0
        rows = np.flatnonzero(known)
        target_scores = scores[rows, chunk_targets[known]]
        ranks[start + rows] = (scores[rows] >= target_scores[:, None]).sum(axis=1) - 1
    return ranks


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of targets ranked in the top ``k`` (one target per query, so recall = hit rate)."""
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def popularity_ranking(item_counts: dict[str, int]) -> list[str]:
    """Items from most to least frequent; ties broken by id so the ranking is deterministic."""
    return [item for item, _ in sorted(item_counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def popularity_recall_at_k(ranking: Sequence[str], targets: Sequence[str], k: int) -> float:
    top = set(ranking[:k])
    return float(np.mean([t in top for t in targets])) if len(targets) else 0.0
