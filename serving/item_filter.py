"""Which items a request may get, and top-k retrieval that honours it.

Filters run after retrieval, as in most production retrieval stacks: the index knows nothing
of users or categories, so it is asked for more candidates than ``k`` and the filter keeps
the admitted ones. How many more cannot be known in advance (a category may hold 1 % of the
catalog), so the fetch grows until ``k`` items pass or the whole catalog has been seen:
a request gets ``k`` items whenever the catalog holds ``k`` admissible ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# (query, n) -> the rows of the n best items and their scores, best first.
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
_GROWTH = 4  # each retry fetches this many times more


@dataclass(frozen=True)
class ItemFilter:
    """Items never to return, and, if ``allowed`` is set, the only items that may be."""

    excluded: frozenset[str] = frozenset()
    allowed: frozenset[str] | None = None

    def admits(self, item_id: str) -> bool:
        if item_id in self.excluded:
            return False
        return self.allowed is None or item_id in self.allowed

    def first_fetch(self, k: int) -> int:
        """A first fetch that suffices when only exclusions apply and every one ranks high."""
        return k + len(self.excluded)


def filtered_top_k(
    search: Search, query: np.ndarray, k: int, item_ids: np.ndarray, admitted: ItemFilter
) -> list[tuple[str, float]]:
    """The ``k`` best admitted items ``(item_id, score)``, best first."""
    catalog = len(item_ids)
    fetch = min(catalog, admitted.first_fetch(k))
    while True:
        rows, scores = search(query, fetch)
        kept = [
            (item, float(score))
            for item, score in zip(item_ids[rows].tolist(), scores.tolist(), strict=True)
            if admitted.admits(item)
        ]
        if len(kept) >= k or fetch >= catalog:
            return kept[:k]
        fetch = min(catalog, fetch * _GROWTH)
