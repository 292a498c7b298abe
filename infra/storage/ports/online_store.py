"""The online store port: fresh state that serving, training and the feature job read.

It holds each user's recent events (the feature spec's user history), the item catalog
(item schema v1: categories and availability, which serving filters on) and, per item, counts
over sliding event-time windows (popularity, for cold start) and an exponentially decayed
count (the frequency estimates behind training's sampling-bias correction). Item features
say which event time they are current to, so a reader can tell how fresh they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol

from streamrec.infra.contracts.items import Item


class HistoryEntry(NamedTuple):
    timestamp: int  # event time, ms since epoch
    event_id: str
    item_id: str
    event_type: str = ""  # "" for entries stored before feature spec 3


class UserHistory:
    """A user's newest history entries, newest first, as the store returned them.

    The entries are decoded when first read, and ``signature`` names the stored entries
    without decoding them. A request that the result cache answers needs only the signature,
    and decoding the entries was a third of a cache hit's CPU (measured on a 20-event history).
    """

    __slots__ = ("_decode", "_entries", "_size", "signature")

    def __init__(
        self, signature: bytes, size: int, decode: Callable[[], list[HistoryEntry]]
    ) -> None:
        self.signature = signature  # differs whenever an entry does
        self._size = size
        self._decode = decode
        self._entries: list[HistoryEntry] | None = None

    @classmethod
    def of(cls, entries: Sequence[HistoryEntry]) -> UserHistory:
        """A history already decoded (stores that hold entries as objects, tests)."""
        decoded = list(entries)
        text = "\0".join(f"{e.event_id}\1{e.timestamp}\1{e.item_id}" for e in decoded)
        signature = hashlib.blake2b(text.encode(), digest_size=16).digest()
        return cls(signature, len(decoded), lambda: decoded)

    @property
    def entries(self) -> list[HistoryEntry]:
        if self._entries is None:
            self._entries = self._decode()  # two threads may both decode: the same result
        return self._entries

    def __len__(self) -> int:
        return self._size


class ItemEvent(NamedTuple):
    item_id: str
    timestamp: int  # event time, ms since epoch


class Ranking(NamedTuple):
    """Items with scores, best first, and the event time the scores are current to."""

    items: list[tuple[str, float]]
    current_to: int | None


class OnlineStore(Protocol):
    """Raises :class:`~streamrec.infra.core.errors.StoreUnavailable` when the store cannot
    answer."""

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

    def replicated(self) -> None:
        """Returns once everything written to the store so far, by any process, is on as many
        replicas as the configuration asks (none by default); raises StoreUnavailable if that
        did not happen within its time. The feature job asks before it commits offsets."""

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

    def recent_history(self, user_id: str, limit: int) -> UserHistory:
        """The user's ``limit`` most recent entries, most recent first: what the query tower
        reads at serving time (items, their times and types)."""

    def add_item_events(self, once_key: str, events: Iterable[ItemEvent]) -> bool:
        """Counts events into the item windows and frequencies, once per ``once_key``.

        The key names the work (a batch's partition): adding again under it changes nothing,
        so a replayed batch is not counted twice. Returns False if it was already counted.
        """

    def advance_item_windows(self, watermark: int) -> None:
        """Slides every window to end at ``watermark`` (event time) and records it as the
        time item features are current to."""

    def popular_items(self, window: str, k: int) -> Ranking:
        """The ``k`` items with the most events in ``window`` (a configured window, e.g. "1d")."""

    def item_frequencies(self) -> Ranking:
        """Every item's share of the decayed event count (they sum to 1), most frequent first."""

    def put_items(self, items: Iterable[Item]) -> int:
        """Stores item records, each replacing the item's previous record whole."""

    def items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        """The records of these items; items without one are absent."""

    def catalog(self) -> Iterator[Item]:
        """Every item record, in no particular order."""

    def items_in_categories(self, categories: Sequence[str]) -> set[str]:
        """The ids of items in any of these categories."""

    def unavailable_items(self) -> set[str]:
        """The ids of items marked unavailable."""
