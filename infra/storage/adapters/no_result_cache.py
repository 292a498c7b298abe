"""``result_cache.type = "none"``: every lookup misses and nothing is stored.

A store of its own rather than ``if cache:`` checks in the serving code, so that turning the
cache off is a configuration change that leaves one code path.
"""

from __future__ import annotations

from streamrec.infra.storage.ports.result_cache import RankedItems


class NoResultCache:
    def get(self, key: str) -> RankedItems | None:
        return None

    def put(self, key: str, ranked: RankedItems) -> None:
        return None
