"""Which items a request may get, and top-k retrieval that honours it.

Filters run after retrieval, as in most production retrieval stacks: the index knows nothing
of users or categories, so it is asked for more candidates than ``k`` and the filter keeps
the admitted ones. How many more cannot be known in advance (a category may hold 1 % of the
catalog), so the fetch grows until ``k`` items pass or the whole catalog has been seen:
a request gets ``k`` items whenever the catalog holds ``k`` admissible ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# (query, n) -> the rows of the n best items and their scores, best first.
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
_GROWTH = 4  # each retry fetches this many times more


@dataclass(frozen=True)
class ItemFilter:
    """Items never to return, and, if ``allowed`` is set, the only items that may be.

    ``excluded`` is the request's own: seen items and explicit exclusions, few and likely to
    rank high. ``blocked`` holds the catalog's sets (unavailable items, excluded categories),
    shared by every request and checked where they are: a catalog may hold hundreds of
    thousands of unavailable items, too many to copy into one set per request.
    """

    excluded: frozenset[str] = frozenset()
    blocked: tuple[frozenset[str], ...] = ()
    allowed: frozenset[str] | None = None

    def admits(self, item_id: str) -> bool:
        if item_id in self.excluded:
            return False
        if any(item_id in items for items in self.blocked):
            return False
        return self.allowed is None or item_id in self.allowed

    def first_fetch(self, k: int, catalog: int) -> int:
        """A first fetch that suffices when every request exclusion ranks high and the
        catalog's filters take their share of every rank, as they do on average."""
        wanted = k + len(self.excluded)
        share = 1.0 - min(1.0, sum(len(items) for items in self.blocked) / catalog)
        if self.allowed is not None:
            share *= len(self.allowed) / catalog
        return min(catalog, math.ceil(wanted / max(share, 1.0 / catalog)))


def filtered_top_k(
    search: Search, query: np.ndarray, k: int, item_ids: np.ndarray, admitted: ItemFilter
) -> list[tuple[str, float]]:
    """The ``k`` best admitted items ``(item_id, score)``, best first."""
    catalog = len(item_ids)
    fetch = admitted.first_fetch(k, catalog)
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
