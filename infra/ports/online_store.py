"""The online store port: fresh per-user state that serving and the feature job read.

Today it holds each user's recent events (the feature spec's user history); item popularity
and frequency features will be added here too, so that serving has one place to read from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol


class HistoryEntry(NamedTuple):
    timestamp: int  # event time, ms since epoch
    event_id: str
    item_id: str


class OnlineStore(Protocol):
    """Raises :class:`~streamrec.infra.errors.StoreUnavailable` when the store cannot answer."""

    def ping(self) -> None:
        """Returns if the store answers; raises StoreUnavailable naming how to fix it if not."""

    def append_history(self, entries: Iterable[tuple[str, HistoryEntry]]) -> int:
        """Adds ``(user_id, entry)`` pairs; returns how many were sent.

        Idempotent: appending an entry (same ``event_id``) again changes nothing, so a replayed
        batch leaves the store as it was. Nothing is trimmed here (see :meth:`trim_histories`),
        so a replayed batch still finds every entry the first attempt found.
        """

    def trim_histories(self, user_ids: Iterable[str]) -> None:
        """Keeps only the newest ``online_history_length`` entries of each user."""

    def histories(
        self, spans: Mapping[str, tuple[int, int]], length: int
    ) -> dict[str, list[HistoryEntry]]:
        """What point-in-time history needs for each user's span of event times ``(first, last)``.

        That is the ``length`` newest entries strictly before ``first`` and every entry from
        ``first`` up to, not including, ``last``: together they hold the ``length`` newest
        entries before any time in the span. Oldest first; an unknown user has none.
        """

    def recent_items(self, user_id: str, limit: int) -> list[str]:
        """The user's ``limit`` most recent item ids, most recent first."""
