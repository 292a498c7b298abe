"""The result cache port: rankings recently served, so a repeated request skips the model.

The cache is only an optimisation. Callers build the key (it must name everything the result
depends on) and treat :class:`~streamrec.infra.core.errors.StoreUnavailable` as a miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RankedItems:
    """Items best first, with their scores."""

    item_ids: list[str]
    scores: list[float]


class ResultCache(Protocol):
    def get(self, key: str) -> RankedItems | None:
        """The cached ranking, or None on a miss."""

    def put(self, key: str, ranked: RankedItems) -> None:
        """Stores a ranking for the cache's time to live."""
