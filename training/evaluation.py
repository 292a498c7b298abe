"""Full-ranking evaluation: every query is scored against the whole catalog.

Sampled metrics (ranking the target among a few random negatives) overstate quality and can
even reorder models; with catalogs of this size exact ranking is affordable, so it is the only
kind computed here. Ties count against the model: a target that scores the same as other items
ranks below all of them, so a constant model cannot look good.

Every figure streamrec reports (the trainer's gate, ``streamrec evaluate``, the demo's served
recall) comes from this module, and so do the baselines they are compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_CHUNK = 1024

# Scores for a chunk of queries: rows are queries, columns the catalog's items.
ScoreChunk = Callable[[slice], np.ndarray]


@dataclass(frozen=True)
class Rankings:
    """Where each query's target ranked (0-based, ties against it) and each query's top items."""

    ranks: np.ndarray  # [queries]
    top: np.ndarray  # [queries, max_k] catalog indices, best first


def rank_all(
    score_chunk: ScoreChunk,
    targets: np.ndarray,
    max_k: int,
    exclude: Sequence[Sequence[int]] | None = None,
) -> Rankings:
    """Ranks every query's target among all items.

    ``targets`` are catalog indices (negative: an item outside the catalog, ranked last).
    ``exclude`` lists, per query, catalog indices to drop before ranking (items already seen,
    as serving leaves them out); a target among them is a miss (ranked last), because a served
    list could never show it.
    """
    queries = len(targets)
    ranks = np.empty(queries, dtype=np.int64)
    top = np.empty((queries, max_k), dtype=np.int64)
    for start in range(0, queries, _CHUNK):
        rows = slice(start, min(start + _CHUNK, queries))
        scores = np.asarray(score_chunk(rows), dtype=np.float32).copy()
        if exclude is not None:
            _drop(scores, exclude[rows])
        ranks[rows] = _target_ranks(scores, targets[rows])
        top = top[:, : scores.shape[1]]  # a catalog smaller than max_k
        top[rows] = _top_k(scores, max_k)
    return Rankings(ranks, top)


def _drop(scores: np.ndarray, exclude: Sequence[Sequence[int]]) -> None:
    for row, items in enumerate(exclude):
        scores[row, [i for i in items if i >= 0]] = -np.inf


def _target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    ranks = np.full(len(targets), scores.shape[1], dtype=np.int64)
    known = np.flatnonzero(targets >= 0)
    target_scores = scores[known, targets[known]]
    ranked = (scores[known] >= target_scores[:, None]).sum(axis=1) - 1
    # A target the ranking cannot return (dropped as seen, or unknown to the model) is a miss
    # at every cut-off, however small the catalog: ranked as if outside it.
    ranks[known] = np.where(np.isneginf(target_scores), scores.shape[1], ranked)
    return ranks


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
    return np.take_along_axis(best, order, axis=1)


def target_ranks(queries: np.ndarray, items: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The 0-based rank of each target among all items by dot product (ties against it)."""
    return rank_all(lambda rows: queries[rows] @ items.T, targets, max_k=1).ranks


def metrics(rankings: Rankings, ks: Sequence[int], popularity_rank: np.ndarray) -> dict[str, float]:
    """Recall@K (= hit rate: one target per query), NDCG@K, MRR, coverage@K and popularity
    bias@K (the mean popularity rank of what is recommended; 0 is the most popular item)."""
    ranks, catalog = rankings.ranks, len(popularity_rank)
    found: dict[str, float] = {"queries": len(ranks), "mrr": float(np.mean(1.0 / (ranks + 1)))}
    for k in ks:
        hits = ranks < k
        found[f"recall@{k}"] = float(np.mean(hits))
        found[f"ndcg@{k}"] = float(np.mean(np.where(hits, 1.0 / np.log2(ranks + 2.0), 0.0)))
        shown = rankings.top[:, :k]
        found[f"coverage@{k}"] = float(len(np.unique(shown)) / catalog)
        found[f"popularity_rank@{k}"] = float(np.mean(popularity_rank[shown]))
    return found


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of targets ranked in the top ``k`` (one target per query, so recall = hit rate)."""
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


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


def popularity_ranking(item_counts: Mapping[str, int]) -> list[str]:
    """The most-popular baseline: items from most to least frequent, ties broken by id."""
    return [item for item, _ in sorted(item_counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def popularity_recall_at_k(item_counts: Mapping[str, int], targets: Sequence[str], k: int) -> float:
    """Recall@k of recommending the same most-popular ``k`` items to everyone."""
    top = popularity_ranking(item_counts)[:k]
    return recall_at_k(ranks_in_lists([top] * len(targets), targets), k)
