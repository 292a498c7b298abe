"""What serving filters on and falls back to, read from the online store and held in memory.

Reading the unavailable items, a category's items or the popular items on every request would
cost a Redis round trip each, and their answers change slowly, so each is kept for
``serving.catalog_refresh_seconds`` and read again after. The copy kept is also what serving
falls back to while the online store is down: an old answer is better than none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage.ports.online_store import OnlineStore

T = TypeVar("T")


class StoreSnapshots:
    """Answers of the online store by key, each read again once older than ``max_age``.

    One thread at a time reads a stale key again (single flight); the others go on answering
    from the kept copy meanwhile, so a refresh costs one request one round trip, not every
    request in flight. Only a key never read yet makes a request wait for the store."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, object]] = {}
        self._reading: set[str] = set()  # stale keys a thread is reading again

    def get(self, key: str, read: Callable[[], T]) -> T:
        """The kept answer if fresh, else ``read()``'s; a kept answer, however old, if the
        store is unavailable or another thread is reading it again. Raises StoreUnavailable
        when there is none to fall back to."""
        with self._lock:
            kept = self._answers.get(key)
            if kept is not None and (
                self._clock() - kept[0] < self._max_age or key in self._reading
            ):
                return kept[1]  # type: ignore[return-value]
            self._reading.add(key)
        try:
            answer = read()
        except StoreUnavailable:
            if kept is None:
                raise
            answer = kept[1]  # try the store again only once this is stale again
        finally:
            with self._lock:
                self._reading.discard(key)
        with self._lock:
            self._answers[key] = (self._clock(), answer)
        return answer


class CatalogView:
    """The catalog's filters and the popular items, as serving needs them."""

    def __init__(
        self,
        store: OnlineStore,
        windows: Sequence[str],
        popular_depth: int,
        snapshots: StoreSnapshots,
    ) -> None:
        self._store = store
        self._windows = list(windows)
        self._popular_depth = popular_depth
        self._snapshots = snapshots

    def unavailable(self) -> frozenset[str]:
        return self._snapshots.get(
            "unavailable", lambda: frozenset(self._store.unavailable_items())
        )

    def in_categories(self, categories: Iterable[str]) -> frozenset[str]:
        """Items in any of these categories."""
        found: set[str] = set()
        for category in categories:
            found |= self._snapshots.get(
                f"category:{category}",
                lambda c=category: frozenset(self._store.items_in_categories([c])),
            )
        return frozenset(found)

    def popular(self) -> list[tuple[str, float]]:
        """The most popular items of the first window, then of each longer window the items not
        already listed, up to ``popular_depth`` in all: a window with few events (a quiet hour)
        is topped up rather than leaving cold-start users with a short list."""
        return self._snapshots.get("popular", self._read_popular)

    def window_counts(self, window: str, depth: int) -> list[tuple[str, float]]:
        """The ``depth`` items ``window`` counts most, with their counts, most counted first:
        what a version's popularity prior boosts."""
        return self._snapshots.get(
            f"counts:{window}:{depth}", lambda: self._store.popular_items(window, depth).items
        )

    def _read_popular(self) -> list[tuple[str, float]]:
        ranked: dict[str, float] = {}
        for window in self._windows:
            for item, count in self._store.popular_items(window, self._popular_depth).items:
                ranked.setdefault(item, count)
            if len(ranked) >= self._popular_depth:
                break
        return list(ranked.items())[: self._popular_depth]
