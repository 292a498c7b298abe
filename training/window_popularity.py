"""Each query's popularity counts as the online store held them when the query was asked.

Serving boosts the items a popularity window counts most
(:mod:`~streamrec.infra.contracts.popularity_prior`). An evaluation that boosted anything else
(counts of the whole training part, or counts that include the query's own event) would measure
a prior serving never applies, so this replays the window over the data window's events: for a
query at time ``t``, the events before ``t`` from the window's start at ``t`` on
(:func:`~streamrec.infra.contracts.popularity_prior.window_start_ms`, ``t`` as the watermark),
of which the ``depth`` most counted items keep their counts, ties to the greater item id as in
the store. Items the catalog does not hold still take their place among those ``depth``.
"""

from __future__ import annotations

import numpy as np

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.popularity_prior import PopularityPrior, window_start_ms
from streamrec.infra.core.config import window_length_ms
from streamrec.training.data_window import DataWindow
from streamrec.training.evaluate import ItemBoosts
from streamrec.training.queries import Catalog, Queries


class WindowPopularity:
    """Counts ``[queries, catalog]`` of any popularity window at each query's time."""

    def __init__(self, times: np.ndarray, item_ids: np.ndarray, catalog: Catalog) -> None:
        """``times`` and ``item_ids`` are every event of the data window, in any order."""
        order = np.argsort(times, kind="stable")
        self._times = np.asarray(times, np.int64)[order]
        # np.unique sorts the ids, so a greater code is a greater id: the store's tie order.
        ids, codes = np.unique(np.asarray(item_ids).astype(str)[order], return_inverse=True)
        self._codes = codes.reshape(-1)
        index = catalog.index()
        self._columns = np.array([index.get(item, -1) for item in ids.tolist()], np.int64)
        self._catalog_size = len(catalog)

    @classmethod
    def of(cls, window: DataWindow, catalog: Catalog) -> WindowPopularity:
        """Over every event of ``window``, its hold-out included: serving counts them all."""
        return cls(window.events[spec.TIMESTAMP], window.events[spec.ITEM_ID], catalog)

    def counts(self, at: np.ndarray, window: str, depth: int) -> np.ndarray:
        """``[len(at), catalog]`` float32: each item's count in ``window`` at each time, 0 for
        items outside its ``depth`` most counted or outside the catalog.

        The window slides over the times in order, adding the events that enter it and
        removing those that leave, so each event is counted once per call rather than once
        per query: a week of a busy stream holds hundreds of thousands of events."""
        at = np.asarray(at, np.int64)
        starts = np.searchsorted(self._times, window_start_ms(at, window_length_ms(window)))
        ends = np.searchsorted(self._times, at, "left")  # strictly before: not the query itself
        found = np.zeros((len(at), self._catalog_size), np.float32)
        counts = np.zeros(len(self._columns), np.int64)
        first = last = 0  # the events [first, last) are in ``counts``
        for row in np.argsort(at, kind="stable").tolist():
            start, end = int(starts[row]), int(ends[row])
            if first == last:  # empty: jump to this window
                first = last = start
            np.add.at(counts, self._codes[last:end], 1)
            np.subtract.at(counts, self._codes[first:start], 1)
            first, last = start, end
            codes = np.flatnonzero(counts)
            kept = codes[_most_counted(codes, counts[codes], depth)]
            columns = self._columns[kept]
            known = columns >= 0
            found[row, columns[known]] = counts[kept][known]
        return found

    def boosts(self, prior: PopularityPrior) -> ItemBoosts:
        """The prior's boosts ``[rows, catalog]`` of any queries' ``rows``."""

        def boosted(queries: Queries, rows: slice) -> np.ndarray:
            counts = self.counts(queries.timestamps[rows], prior.window, prior.depth)
            return prior.boosts(counts).astype(np.float32)

        return boosted


def _most_counted(codes: np.ndarray, counts: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the ``depth`` greatest counts, ties to the greater code."""
    if len(codes) <= depth:
        return np.arange(len(codes))
    key = counts.astype(np.int64) * (int(codes.max()) + 1) + codes
    return np.argpartition(-key, depth - 1)[:depth]
