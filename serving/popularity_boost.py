"""A version's popularity prior at serving: its scores, boosted as it was evaluated.

The prior (:mod:`~streamrec.infra.contracts.popularity_prior`) adds ``weight * ln(1 + count)``
to the dot product of the ``depth`` items a popularity window counts most. The boost is never
negative and is 0 for every other item, so the exact top k of the boosted scores lies among
the model's own top k and those items: an item in neither scores its dot product alone, no more
than each of the model's k. So serving searches the index for k, as without a prior, and adds
``depth`` dot products, a matrix-vector product of a few microseconds; only the best of them are
sorted.

The counts come from the catalog view (:mod:`.catalog_view`), a snapshot read again every
``serving.catalog_refresh_seconds``; they are kept while the online store is down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.serving.item_filter import ItemFilter

_SPARE = 32  # boosted items sorted beyond k and the model's own: room for filtered-out ones


class PopularityBoosts:
    """The boosts of one snapshot of a window's counts, for the items one model knows.

    Made once per snapshot and model: the boosted items' embeddings are gathered then into
    one contiguous ``[depth, dim]`` matrix, so a request's boosted scores are one
    matrix-vector product, not a gather from the (memory-mapped) catalog."""

    def __init__(
        self,
        prior: PopularityPrior,
        counts: Sequence[tuple[str, float]],
        model_rows: dict[str, int],
        vectors_of: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        known = [(item, count) for item, count in counts[: prior.depth] if item in model_rows]
        self.items = [item for item, _ in known]
        rows = np.array([model_rows[item] for item in self.items], np.int64)
        self.vectors = np.ascontiguousarray(vectors_of(rows), np.float32)  # [boosted, dim]
        self.values = prior.boosts(np.array([count for _, count in known], np.float64))
        self._by_item = dict(zip(self.items, self.values.tolist(), strict=True))

    def top_k(
        self,
        ranked: list[tuple[str, float]],
        query: np.ndarray,
        admitted: ItemFilter,
        k: int,
    ) -> list[tuple[str, float]]:
        """The ``k`` best admitted items by boosted score, best first, from the model's own
        ``ranked`` top k (``(item, dot product)``) and the boosted items."""
        boosted = dict(self.rerank(ranked))
        if self.items:
            totals = self.vectors @ query.astype(np.float32, copy=False) + self.values
            added = 0
            for position in _best_first(totals, k + len(boosted) + _SPARE):
                item = self.items[position]
                if item in boosted or not admitted.admits(item):
                    continue
                boosted[item] = float(totals[position])
                added += 1
                if added == k:  # none after these can enter the top k
                    break
        return sorted(boosted.items(), key=lambda pair: -pair[1])[:k]

    def rerank(self, ranked: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """``ranked`` ``(item, dot product)`` with boosted scores, best first (ties in order)."""
        scored = [(item, score + self._by_item.get(item, 0.0)) for item, score in ranked]
        return sorted(scored, key=lambda pair: -pair[1])


def _best_first(values: np.ndarray, first: int) -> Iterator[int]:
    """Positions of ``values`` [n], largest first (ties by position). The ``first`` largest
    are partitioned out and sorted; the rest are sorted only if a caller reads past them."""
    if first >= len(values):
        yield from np.lexsort((np.arange(len(values)), -values)).tolist()
        return
    least = values[np.argpartition(-values, first - 1)[first - 1]]
    head = values >= least  # every tie of the least kept too, so ties stay in position order
    for part in (np.flatnonzero(head), np.flatnonzero(~head)):
        yield from part[np.lexsort((part, -values[part]))].tolist()
