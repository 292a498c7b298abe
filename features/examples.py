"""Point-in-time training examples: each event's target item and the history its user had then.

The history of an event is taken only from events strictly earlier in event time, so a model
never trains on what it could not have known when the event happened. Earlier batches are
represented by the online store's entries; because entries are deduplicated by ``event_id``
and filtered by time, recomputing a batch after its history was already stored (a replay)
yields the same examples.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from streamrec.infra.ports.online_store import HistoryEntry

EXAMPLE_COLUMNS = ("event_id", "timestamp", "user_id", "item_id", "event_type", "history", "date")


def point_in_time_examples(
    events: pd.DataFrame, prior: Sequence[HistoryEntry], history_length: int
) -> pd.DataFrame:
    """Examples for one user's events of a batch.

    ``events`` has columns event_id, user_id, item_id, event_type and timestamp (ms);
    ``prior`` is what the online store held for the user before this batch. Returns one row
    per event, with ``history`` the previous ``history_length`` items, most recent first.
    """
    timeline = {entry.event_id: entry for entry in prior}
    for row in events.itertuples(index=False):
        timeline[row.event_id] = HistoryEntry(int(row.timestamp), row.event_id, row.item_id)
    ordered = sorted(timeline.values())
    times = [entry.timestamp for entry in ordered]
    histories = []
    for timestamp in events["timestamp"]:
        earlier = bisect_left(times, int(timestamp))
        window = ordered[max(0, earlier - history_length) : earlier]
        histories.append([entry.item_id for entry in reversed(window)])
    examples = events.loc[:, ["event_id", "timestamp", "user_id", "item_id", "event_type"]].copy()
    examples["history"] = histories
    examples["date"] = [event_date(int(ts)) for ts in examples["timestamp"]]
    return examples.reset_index(drop=True)


def event_date(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
