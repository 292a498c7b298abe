"""The exact top k of dot products plus boosts that are never negative, from one index search.

A version's score for an item is its dot product with the query plus the boosts serving adds:
the popularity prior (:mod:`.popularity_boost`) and the item neighbour lists
(:mod:`~streamrec.infra.contracts.item_neighbours`). Both are 0 for all but a few thousand items
and never negative. So an item outside the model's own top k and without a boost scores at
most the k-th dot product, ``floor``, and cannot pass the k answers found. Boosted items are
read largest boost first, in chunks that double (64, 128, ...): once the k-th score found is
at least ``floor`` plus the next boost, no item left can pass it, and the rest are never
scored. That is the threshold algorithm (Fagin et al., 2001) over two lists: the index's, and
the boosts'.

With an approximate index "exact" means exact over what the index returns, as without boosts.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from streamrec.serving.item_filter import ItemFilter

VectorsOf = Callable[[np.ndarray], np.ndarray]  # item rows [m] -> their embeddings [m, dim]
_CHUNK = 64
_HEAD = 4 * _CHUNK  # a request's boosts sorted at first; the rest only if read past it


class RowBoosts:
    """The positive boosts of some item rows, read largest first; every other row's is 0.

    ``rows`` int64 ``[m]`` (distinct) and ``values`` float64 ``[m]``, ascending by row if
    ``by_row``, else in any order. The rows' embeddings come from ``vectors_of``: gathered
    here at once if ``shared`` (boosts made once and read by many requests, at once, so they
    are sorted whole here too), else chunk by chunk as they are read, and only the head that
    is read is sorted (a request's boosts, where a few thousand rows are usually cut short
    after the first chunk).
    """

    def __init__(
        self,
        rows: np.ndarray,
        values: np.ndarray,
        vectors_of: VectorsOf,
        shared: bool = False,
        by_row: bool = False,
    ) -> None:
        keep = values > 0
        rows, values = np.asarray(rows, np.int64)[keep], np.asarray(values, np.float64)[keep]
        if not by_row:
            ascending = np.argsort(rows, kind="stable")
            rows, values = rows[ascending], values[ascending]
        self._rows, self._values = rows, values  # ascending by row
        self._order = np.empty(0, np.int64)  # positions, largest value first: the sorted head
        self._vectors_of = vectors_of
        self._gathered = None
        if shared:
            self._sort_until(len(rows))
            self._gathered = np.ascontiguousarray(vectors_of(rows[self._order]), np.float32)

    def __len__(self) -> int:
        return len(self._rows)

    def head(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``[start:stop]`` of the largest-first order, their boosts and their embeddings
        ``[stop - start, dim]``."""
        self._sort_until(stop)
        chosen = self._order[start:stop]
        rows = self._rows[chosen]
        if self._gathered is not None:
            return rows, self._values[chosen], self._gathered[start:stop]
        vectors = np.asarray(self._vectors_of(rows), np.float32)
        return rows, self._values[chosen], vectors

    def value_at(self, position: int) -> float:
        """The ``position``-th largest boost."""
        self._sort_until(position + 1)
        return float(self._values[self._order[position]])

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The boosts ``[n]`` of any ``rows`` [n] (0 where none)."""
        rows = np.asarray(rows, np.int64)
        if not len(self._rows):
            return np.zeros(len(rows))
        at = np.minimum(np.searchsorted(self._rows, rows), len(self) - 1)
        return np.where(self._rows[at] == rows, self._values[at], 0.0)

    def plus(self, rows: np.ndarray, values: np.ndarray) -> RowBoosts:
        """These boosts with ``values`` added to ``rows`` (distinct, ascending); a request's,
        so gathered as read."""
        rows = np.asarray(rows, np.int64)
        at = np.minimum(np.searchsorted(self._rows, rows), max(len(self) - 1, 0))
        both = self._rows[at] == rows if len(self) else np.zeros(len(rows), bool)
        summed = self._values.copy()
        summed[at[both]] += values[both]
        every = np.concatenate([self._rows, rows[~both]])
        ascending = np.argsort(every, kind="stable")  # two sorted runs: merged in linear time
        merged = np.concatenate([summed, values[~both]])[ascending]
        return RowBoosts(every[ascending], merged, self._vectors_of, by_row=True)

    def _sort_until(self, stop: int) -> None:
        """Makes the largest-first order known up to ``stop``: a head partitioned out first,
        then, if read past, everything after it sorted (never reordering what was read)."""
        sorted_so_far = len(self._order)
        if stop <= sorted_so_far:
            return
        values = self._values
        if sorted_so_far == 0 and len(values) > _HEAD and stop <= _HEAD:
            head = np.argpartition(-values, _HEAD - 1)[:_HEAD]
            self._order = head[np.lexsort((head, -values[head]))]
            return
        rest = np.setdiff1d(np.arange(len(values)), self._order, assume_unique=True)
        rest = rest[np.lexsort((rest, -values[rest]))]
        self._order = np.concatenate([self._order, rest])


def boosted_top_k(
    ranked: list[tuple[str, float]],
    boosts: RowBoosts,
    query: np.ndarray,
    model_rows: dict[str, int],
    item_ids: np.ndarray,
    admitted: ItemFilter,
    k: int,
) -> list[tuple[str, float]]:
    """The ``k`` best admitted items by boosted score, best first, from the model's own
    ``ranked`` top k (``(item, dot product)``, best first) and the boosted rows."""
    extra = boosts.of(np.array([model_rows[item] for item, _ in ranked], np.int64))
    scores = {item: dot + float(bonus) for (item, dot), bonus in zip(ranked, extra, strict=True)}
    best = heapq.nlargest(k, scores.values())
    heapq.heapify(best)  # the k best scores found, least first
    floor = ranked[k - 1][1] if len(ranked) >= k else -np.inf
    query = query.astype(np.float32, copy=False)
    start, size = 0, _CHUNK
    while start < len(boosts):
        kth = best[0] if len(best) == k else -np.inf
        if kth >= floor + boosts.value_at(start):
            break  # no row left can pass the k-th score
        stop = min(start + size, len(boosts))
        rows, values, vectors = boosts.head(start, stop)
        start, size = stop, 2 * size  # where boosts outweigh the dot products, few passes
        totals = vectors @ query + values
        passing = np.flatnonzero(totals > kth)
        for offset in passing[np.argsort(-totals[passing], kind="stable")].tolist():
            item = str(item_ids[rows[offset]])
            if item in scores or not admitted.admits(item):
                continue
            total = float(totals[offset])
            if len(best) == k and total <= best[0]:
                break  # the rest of this chunk scores less
            scores[item] = total
            if len(best) < k:
                heapq.heappush(best, total)
            else:
                heapq.heapreplace(best, total)
    return sorted(scores.items(), key=lambda pair: -pair[1])[:k]


def boosted_ranking(
    ranked: list[tuple[str, float]], boosts: RowBoosts, model_rows: dict[str, int]
) -> list[tuple[str, float]]:
    """``ranked`` ``(item, dot product)`` of known items with boosted scores, best first
    (ties in the given order): what Rank answers."""
    extra = boosts.of(np.array([model_rows[item] for item, _ in ranked], np.int64))
    scored = [(item, dot + float(bonus)) for (item, dot), bonus in zip(ranked, extra, strict=True)]
    return sorted(scored, key=lambda pair: -pair[1])
