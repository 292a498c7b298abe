"""Full-ranking evaluation: every query is scored against the whole catalog.

Sampled metrics (ranking the target among a few random negatives) overstate quality and can
even reorder models; with catalogs of this size exact ranking is affordable, so it is the only
kind computed here. Ties count against the model: a target that scores the same as other items
ranks below all of them, so a constant model cannot look good.

Every figure streamrec reports (the trainer's validation, the demo's served recall) comes from
this module, and so do the baselines they are compared with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

_CHUNK = 2048


def target_ranks(queries: np.ndarray, items: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The 0-based rank of each target among all items by dot product (ties against it).

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


def ranks_in_lists(lists: Sequence[Sequence[str]], targets: Sequence[str]) -> np.ndarray:
    """The 0-based position of each target in its own ranked list (one list per target).

    A target missing from its list gets the list's length: a lower bound on its true rank, so
    metrics at any ``k`` up to the length of the lists are exact.
    """
    ranks = [
        ranked.index(target) if target in ranked else len(ranked)
        for ranked, target in zip((list(r) for r in lists), targets, strict=True)
    ]
    return np.asarray(ranks, dtype=np.int64)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of targets ranked in the top ``k`` (one target per query, so recall = hit rate)."""
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def popularity_ranking(item_counts: Mapping[str, int]) -> list[str]:
    """The most-popular baseline: items from most to least frequent, ties broken by id."""
    return [item for item, _ in sorted(item_counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def popularity_recall_at_k(item_counts: Mapping[str, int], targets: Sequence[str], k: int) -> float:
    """Recall@k of recommending the same most-popular ``k`` items to everyone."""
    top = popularity_ranking(item_counts)[:k]
    return recall_at_k(ranks_in_lists([top] * len(targets), targets), k)
