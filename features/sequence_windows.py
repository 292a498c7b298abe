"""Sequence windows: the feature spec's second example layout, one record per user and date.

A sequence model reads a user's events in order and makes every position a query for the
next item, so one record per event, each repeating up to ``history_length`` earlier items,
mostly carries copies. A window instead holds a user's events of one batch and one UTC date,
in (time, event_id) order, once each, as a ``tf.train.SequenceExample``:

- context: ``user_id``, and ``history``: the user's items strictly before the window's first
  event, most recent first, at most ``history_length`` (what a per-event example of that
  first event would hold), with their ``history_timestamp`` and ``history_event_type``;
- feature lists, one step per event: ``event_id``, ``timestamp``, ``item_id``, ``event_type``,
  and ``context_tokens`` (feature spec 4).

Point in time by construction: a step's past is the context and the steps before it, so a
reader that masks the future (causally) never sees an event later than the one it predicts.
Events stored by earlier batches are not repeated here; readers merge a user's windows of
every batch into one timeline, and take the oldest window's context as the history before it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from streamrec.features.examples import (
    FEATURE_KEYS,
    EventLike,
    event_context_tokens,
    event_date,
    history_before,
    history_entries,
    merged_timeline,
)
from streamrec.features.tfrecord import (
    int_list_entry,
    sequence_example_of,
    string_entry,
    string_list_entry,
    strings_list_entry,
)
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.storage.ports.online_store import HistoryEntry


class SequenceWindow(NamedTuple):
    """A user's events of one batch and one date, and the history before them."""

    user_id: str
    date: str
    history: list[str]  # strictly before events[0], most recent first
    history_times: list[int]
    history_types: list[str]
    events: list[EventLike]  # in (time, event_id) order

    @property
    def examples(self) -> int:
        return len(self.events)

    @property
    def min_timestamp(self) -> int:
        return self.events[0].timestamp

    @property
    def max_timestamp(self) -> int:
        return self.events[-1].timestamp

    def serialize(self) -> bytes:
        events = self.events
        contexts = [event_context_tokens(e.context) for e in events]
        return sequence_example_of(
            (
                string_entry(_KEYS[spec.USER_ID], self.user_id),
                *history_entries(self.history, self.history_times, self.history_types),
            ),
            (
                string_list_entry(
                    _KEYS[spec.EVENT_ID], [e.event_id for e in events], memoise=False
                ),
                int_list_entry(_KEYS[spec.TIMESTAMP], [e.timestamp for e in events]),
                string_list_entry(_KEYS[spec.ITEM_ID], [e.item_id for e in events]),
                string_list_entry(_KEYS[spec.EVENT_TYPE], [e.event_type for e in events]),
                strings_list_entry(_KEYS[spec.CONTEXT_TOKENS], contexts),
            ),
        )


def sequence_windows(
    events: Sequence[EventLike],
    prior: Mapping[str, Iterable[HistoryEntry]],
    history_length: int,
) -> list[SequenceWindow]:
    """The windows of these events, one per user and date, in order of first appearance.

    ``prior`` holds what the online store had for each user before these events, as for
    :func:`.examples.point_in_time_examples`.
    """
    by_user: dict[str, list[EventLike]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    windows = []
    for user_id, user_events in by_user.items():
        ordered = merged_timeline(prior.get(user_id), user_events)
        times = [entry[0] for entry in ordered]
        firsts: dict[str, EventLike] = {}
        for event in user_events:
            firsts.setdefault(event.event_id, event)
        by_date: dict[str, list[EventLike]] = {}
        for event in sorted(firsts.values(), key=lambda e: (e.timestamp, e.event_id)):
            by_date.setdefault(event_date(event.timestamp), []).append(event)
        for date, group in by_date.items():
            end = bisect_left(times, group[0].timestamp)
            history = history_before(ordered, end, history_length)
            windows.append(SequenceWindow(user_id, date, *history, group))
    return windows


_KEYS = FEATURE_KEYS
