"""Point-in-time training examples: each event's target item and the history its user had then.

The history of an event is taken only from events strictly earlier in event time, so a model
never trains on what it could not have known when the event happened. Earlier batches are
represented by the online store's entries; because entries are deduplicated by ``event_id``
and filtered by time, recomputing a batch after its history was already stored (a replay)
yields the same examples.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from streamrec.features.tfrecord import (
    example_of,
    feature_key,
    int_entry,
    ints_entry,
    string_entry,
    strings_entry,
)
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.storage.ports.online_store import HistoryEntry

_DAY_MS = 86_400_000


class EventLike(Protocol):
    event_id: str
    user_id: str
    item_id: str
    event_type: str
    timestamp: int
    context: Mapping[str, str]


class TrainingExample(NamedTuple):
    """One example of the feature spec: an event's target and the user's earlier items."""

    event_id: str
    timestamp: int
    user_id: str
    item_id: str
    event_type: str
    history: list[str]  # most recent first
    history_times: list[int]  # the history's event times, same order
    history_types: list[str]  # the history's event types ("" where the store had none)
    context: tuple[str, ...] = ()  # the event's context tokens (feature spec 4)

    @property
    def date(self) -> str:
        return event_date(self.timestamp)

    @property
    def examples(self) -> int:
        return 1

    @property
    def min_timestamp(self) -> int:
        return self.timestamp

    @property
    def max_timestamp(self) -> int:
        return self.timestamp

    def features(self) -> dict[str, object]:
        """The tf.train.Example features, in the feature spec's order."""
        return {
            spec.EVENT_ID: self.event_id,
            spec.TIMESTAMP: self.timestamp,
            spec.USER_ID: self.user_id,
            spec.ITEM_ID: self.item_id,
            spec.EVENT_TYPE: self.event_type,
            spec.HISTORY: self.history,
            spec.HISTORY_TIMESTAMP: self.history_times,
            spec.HISTORY_EVENT_TYPE: self.history_types,
            spec.CONTEXT_TOKENS: list(self.context),
        }

    def serialize(self) -> bytes:
        """The tf.train.Example bytes: ``encode_example(self.features())``, about twice as fast.

        The feature job writes a million of these at a time, so the entries of the ids that
        repeat across examples (users, items, event types) are memoised whole.
        """
        return example_of(
            (
                string_entry(_KEY_EVENT_ID, self.event_id),
                int_entry(_KEY_TIMESTAMP, self.timestamp),
                _USER_ENTRIES.get(self.user_id)
                or _memoised(_USER_ENTRIES, _KEY_USER_ID, self.user_id),
                _ITEM_ENTRIES.get(self.item_id)
                or _memoised(_ITEM_ENTRIES, _KEY_ITEM_ID, self.item_id),
                _TYPE_ENTRIES.get(self.event_type)
                or _memoised(_TYPE_ENTRIES, _KEY_EVENT_TYPE, self.event_type),
                *history_entries(self.history, self.history_times, self.history_types),
                strings_entry(_KEY_CONTEXT_TOKENS, list(self.context)),
            )
        )


def point_in_time_examples(
    events: Sequence[EventLike],
    prior: Mapping[str, Iterable[HistoryEntry]],
    history_length: int,
) -> list[TrainingExample]:
    """One example per event, in the order given.

    ``prior`` holds what the online store had for each user before these events (a missing
    user had nothing). Each example's ``history`` is the user's previous ``history_length``
    items, strictly earlier in event time, most recent first, with their times and types.
    """
    by_user: dict[str, list[EventLike]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    histories: dict[str, tuple[list, list, list]] = {}
    for user_id, user_events in by_user.items():
        ordered = merged_timeline(prior.get(user_id), user_events)
        times = [entry[0] for entry in ordered]
        for e in user_events:
            end = bisect_left(times, e.timestamp)
            histories[e.event_id] = history_before(ordered, end, history_length)
    return [
        TrainingExample(
            e.event_id,
            e.timestamp,
            e.user_id,
            e.item_id,
            e.event_type,
            *histories[e.event_id],
            event_context_tokens(e.context),
        )
        for e in events
    ]


def history_entries(items: list[str], times: list[int], types: list[str]) -> tuple[bytes, ...]:
    """The entries of a history's three features, as both layouts write them."""
    return (
        strings_entry(_KEY_HISTORY, items),
        ints_entry(_KEY_HISTORY_TIMESTAMP, times),
        strings_entry(_KEY_HISTORY_EVENT_TYPE, types),
    )


def history_before(
    timeline: list[tuple[int, str, str, str]], end: int, length: int
) -> tuple[list[str], list[int], list[str]]:
    """Items, times and types of the ``length`` timeline entries before ``end``, newest first."""
    window = timeline[max(0, end - length) : end][::-1]
    return [t[2] for t in window], [t[0] for t in window], [t[3] for t in window]


def merged_timeline(
    prior: Iterable[HistoryEntry] | None, events: list[EventLike]
) -> list[tuple[int, str, str, str]]:
    """The stored entries and the new events as ``(time, event_id, item_id, event_type)``,
    once per event, in time order."""
    timeline = {entry.event_id: entry for entry in prior} if prior else {}  # fields in order
    timeline.update(
        (e.event_id, (e.timestamp, e.event_id, e.item_id, e.event_type)) for e in events
    )
    return sorted(timeline.values())


def event_context_tokens(context: Mapping[str, str]) -> tuple[str, ...]:
    """:func:`~streamrec.infra.contracts.feature_spec.context_tokens`, memoised: the feature
    job asks for every event's, and contexts repeat (sorting them cost 0.6 µs an event)."""
    if not context:
        return ()
    key = tuple(context.items())
    tokens = _CONTEXT_TOKENS.get(key)
    if tokens is None:
        if len(_CONTEXT_TOKENS) >= _MEMO_MAX:
            _CONTEXT_TOKENS.clear()
        tokens = _CONTEXT_TOKENS[key] = spec.context_tokens(context)
    return tokens


def _memoised(entries: dict[str, bytes], key: bytes, value: str) -> bytes:
    if len(entries) >= _MEMO_MAX:
        entries.clear()
    entries[value] = entry = string_entry(key, value)
    return entry


# The leading bytes of each feature's entries, in the feature spec's order.
FEATURE_KEYS = {
    name: feature_key(name)
    for name in (
        spec.EVENT_ID,
        spec.TIMESTAMP,
        spec.USER_ID,
        spec.ITEM_ID,
        spec.EVENT_TYPE,
        spec.HISTORY,
        spec.HISTORY_TIMESTAMP,
        spec.HISTORY_EVENT_TYPE,
        spec.CONTEXT_TOKENS,
    )
}
(
    _KEY_EVENT_ID,
    _KEY_TIMESTAMP,
    _KEY_USER_ID,
    _KEY_ITEM_ID,
    _KEY_EVENT_TYPE,
    _KEY_HISTORY,
    _KEY_HISTORY_TIMESTAMP,
    _KEY_HISTORY_EVENT_TYPE,
    _KEY_CONTEXT_TOKENS,
) = FEATURE_KEYS.values()
_USER_ENTRIES: dict[str, bytes] = {}
_ITEM_ENTRIES: dict[str, bytes] = {}
_TYPE_ENTRIES: dict[str, bytes] = {}
_CONTEXT_TOKENS: dict[tuple[tuple[str, str], ...], tuple[str, ...]] = {}
_MEMO_MAX = 1_000_000


def event_date(timestamp_ms: int) -> str:
    """The UTC date of an event time, as the examples' date partitions name it."""
    day = timestamp_ms // _DAY_MS
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")
    return date


_DATES: dict[int, str] = {}
