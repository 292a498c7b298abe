"""The exact top k of dot products plus boosts that are never negative, from one index search.

A version's score for an item is its dot product with the query plus the boosts serving adds:
the popularity prior (:mod:`.popularity_boost`) and the item neighbour lists
(:mod:`~streamrec.infra.contracts.item_neighbours`). Both are 0 for all but a few thousand items
and never negative. So an item outside the model's own top k and without a boost scores at
most the k-th dot product, ``floor``, and cannot pass the k answers found. Of the boosted
rows, only those whose boost exceeds the k-th score found minus ``floor`` can still pass; they
are scored largest boost first, in chunks that double (1,024, 2,048, ...), and each chunk raises
the k-th score, so fewer rows stay open. Once none does, the rest are never scored. That is the
threshold algorithm (Fagin et al., 2001) over two lists, the index's and the boosts', where
the boosts' list is never sorted whole: each chunk is partitioned out of the rows still open.

With an approximate index "exact" means exact over what the index returns, as without boosts.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

import numpy as np

from streamrec.serving.item_filter import ItemFilter

VectorsOf = Callable[[np.ndarray], np.ndarray]  # item rows [m] -> their embeddings [m, dim]
_CHUNK = 1024


class RowBoosts:
    """The positive boosts of some item rows; every other row's is 0.

    ``rows`` int64 ``[m]`` (distinct) and ``values`` float64 ``[m]``, ascending by row if
    ``by_row``, else in any order. Rows are addressed by their position here. Their embeddings
    come from ``vectors_of``: gathered here at once if ``shared`` (boosts made once and read by
    many requests), else as they are read (a request's, where most rows are never read).
    A request's boosts added to shared ones (:meth:`plus`) keep the shared rows first, in the
    same positions, so that their gathered embeddings still serve.
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
        self.rows, self.values = rows, values
        self._runs = [0, len(rows)]  # bounds of the runs ascending by row
        self._vectors_of = vectors_of
        self._gathered = np.empty((0, 0), np.float32)  # of positions [0, len)
        if shared:
            self._gathered = np.ascontiguousarray(vectors_of(rows), np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def totals(self, positions: np.ndarray, query: np.ndarray) -> np.ndarray:
        """The boosted scores ``[n]`` of the rows at ``positions`` [n]: dot product with
        ``query`` [dim] plus boost. Rows with gathered embeddings are scored all at once (one
        small product beats picking them out), the others read from ``vectors_of``."""
        dots = np.empty(len(positions), np.float32)
        gathered = positions < len(self._gathered)
        if gathered.any():
            dots[gathered] = (self._gathered @ query)[positions[gathered]]
        if not gathered.all():
            rest = positions[~gathered]
            dots[~gathered] = np.asarray(self._vectors_of(self.rows[rest]), np.float32) @ query
        return dots + self.values[positions]

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The boosts ``[n]`` of any ``rows`` [n] (0 where none)."""
        rows = np.asarray(rows, np.int64)
        found = np.zeros(len(rows))
        for start, stop in itertools.pairwise(self._runs):
            if stop > start:
                run = self.rows[start:stop]
                at = np.minimum(np.searchsorted(run, rows), stop - start - 1)
                found += np.where(run[at] == rows, self.values[start:stop][at], 0.0)
        return found

    def plus(self, rows: np.ndarray, values: np.ndarray) -> RowBoosts:
        """These boosts (one run, as made) with ``values`` [n] added to ``rows`` [n] (distinct,
        ascending): a request's, gathered as read. Rows of both are summed in place; the
        others follow as a second run."""
        if len(self._runs) > 2:
            raise ValueError("boosts can be added only to boosts made in one run")
        rows, values = np.asarray(rows, np.int64), np.asarray(values, np.float64)
        keep = values > 0
        rows, values = rows[keep], values[keep]
        own = self.rows
        at = np.minimum(np.searchsorted(own, rows), max(len(own) - 1, 0))
        both = own[at] == rows if len(own) else np.zeros(len(rows), bool)
        summed = self.values.copy()
        summed[at[both]] += values[both]
        every = np.concatenate([own, rows[~both]])
        return RowBoosts._runs_of(
            every, np.concatenate([summed, values[~both]]), [0, len(own), len(every)],
            self._vectors_of, self._gathered,
        )  # fmt: skip

    @classmethod
    def _runs_of(cls, rows, values, runs, vectors_of, gathered) -> RowBoosts:
        made = cls.__new__(cls)
        made.rows, made.values, made._runs = rows, values, runs
        made._vectors_of, made._gathered = vectors_of, gathered
        return made


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
    if len(ranked) < k:  # the index holds no other admitted item
        return sorted(scores.items(), key=lambda pair: -pair[1])
    best = heapq.nlargest(k, scores.values())
    heapq.heapify(best)  # the k best scores found, least first
    floor = ranked[k - 1][1]
    query = query.astype(np.float32, copy=False)
    values = boosts.values
    open_rows = np.flatnonzero(values > best[0] - floor)  # positions that could still pass
    size = _CHUNK
    while len(open_rows):
        if len(open_rows) > size:  # the largest boosts open, the rest left open
            split = np.argpartition(-values[open_rows], size - 1)
            read, open_rows = open_rows[split[:size]], open_rows[split[size:]]
        else:
            read, open_rows = open_rows, open_rows[:0]
        size *= 2  # where boosts outweigh the dot products, few passes
        totals = boosts.totals(read, query)
        _admit_passing(read, totals, boosts.rows, item_ids, admitted, scores, best)
        open_rows = open_rows[values[open_rows] > best[0] - floor]
    return sorted(scores.items(), key=lambda pair: -pair[1])[:k]


def _admit_passing(
    read: np.ndarray,
    totals: np.ndarray,
    rows: np.ndarray,
    item_ids: np.ndarray,
    admitted: ItemFilter,
    scores: dict[str, float],
    best: list[float],
) -> None:
    """Adds the admitted rows of ``read`` (positions [n], scored ``totals`` [n]) that pass the
    k-th score ``best[0]`` to ``scores``, best first, keeping ``best`` the k best."""
    passing = np.flatnonzero(totals > best[0])
    for offset in passing[np.argsort(-totals[passing], kind="stable")].tolist():
        total = float(totals[offset])
        if total <= best[0]:
            return  # the rest score less
        item = str(item_ids[rows[read[offset]]])
        if item in scores or not admitted.admits(item):
            continue
        scores[item] = total
        heapq.heapreplace(best, total)


def boosted_ranking(
    ranked: list[tuple[str, float]], boosts: RowBoosts, model_rows: dict[str, int]
) -> list[tuple[str, float]]:
    """``ranked`` ``(item, dot product)`` of known items with boosted scores, best first
    (ties in the given order): what Rank answers."""
    extra = boosts.of(np.array([model_rows[item] for item, _ in ranked], np.int64))
    scored = [(item, dot + float(bonus)) for (item, dot), bonus in zip(ranked, extra, strict=True)]
    return sorted(scored, key=lambda pair: -pair[1])
