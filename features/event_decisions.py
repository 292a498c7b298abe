"""The decisions the feature job takes about each record, shared by the stream and backfills.

Each is a pure function of the records in offset order (and, for lateness, the watermarks the
users had before them), which is what lets a replayed batch or a backfill decide exactly as the
stream did. Lateness is carried from record to record of each user's timeline, so where one
batch ends and the next begins never changes a decision.
"""

from __future__ import annotations

from streamrec.features.rejections import RejectedRecord
from streamrec.infra.contracts.events import Event, InvalidEvent, parse_event
from streamrec.infra.storage.ports.event_bus import BusRecord

Decoded = tuple[Event, BusRecord]
_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000


def decode(
    records: list[BusRecord], max_ahead_minutes: float
) -> tuple[list[Decoded], list[RejectedRecord]]:
    """Each record checked against event schema v1, and its event time against its publish
    time (where the record has one): at most ``max_ahead_minutes`` ahead. The refused ones
    come with their reason."""
    max_ahead_ms = int(max_ahead_minutes * _MINUTE_MS)
    events, refused = [], []
    for record in records:
        try:
            event = parse_event(record.value if record.value is not None else b"")
        except InvalidEvent as exc:
            refused.append(rejected(record, str(exc)))
            continue
        if record.timestamp > 0 and event.timestamp > record.timestamp + max_ahead_ms:
            refused.append(rejected(record, _ahead(event, record, max_ahead_minutes)))
        else:
            events.append((event, record))
    return events, refused


def first_per_event_id(events: list[Decoded]) -> tuple[list[Decoded], int]:
    """The first record of each event_id; also how many repeats were dropped."""
    seen: set[str] = set()
    first = []
    for event, record in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            first.append((event, record))
    return first, len(events) - len(first)


def split_late(
    events: list[Decoded], watermarks: dict[str, int], horizon_hours: float
) -> tuple[list[Decoded], list[RejectedRecord], dict[str, int]]:
    """On-time events, late ones (with the reason), and the watermarks of their users after them.

    Late means more than the horizon older than the event's own user's watermark when it
    arrived: the newest event time of that user accepted before it (``watermarks`` holds each
    user's from earlier batches, and is not changed). Other users' events never make an event
    late, so a history in time order per user, sorted by user or in time, has no late event.
    """
    horizon_ms = int(horizon_hours * _HOUR_MS)
    after: dict[str, int] = {}
    on_time, late = [], []
    for event, record in events:
        user = event.user_id
        watermark = after.get(user, watermarks.get(user))
        if watermark is not None and event.timestamp < watermark - horizon_ms:
            late.append(_late(record, event, watermark, horizon_hours))
        else:
            on_time.append((event, record))
            after[user] = event.timestamp if watermark is None else max(watermark, event.timestamp)
    return on_time, late, after


def rejected(record: BusRecord, reason: str) -> RejectedRecord:
    return RejectedRecord(record.key, record.value, record.partition, record.offset, reason)


def _ahead(event: Event, record: BusRecord, max_ahead_minutes: float) -> str:
    return (
        f"event time {event.timestamp} is more than {max_ahead_minutes:g} min ahead of its "
        f"publish time {record.timestamp}: check the sender's clock"
    )


def _late(record: BusRecord, event: Event, watermark: int, horizon_hours: float) -> RejectedRecord:
    reason = (
        f"late: event time {event.timestamp} is more than {horizon_hours:g}h older than user "
        f"{event.user_id!r}'s newest accepted event ({watermark}), on their own timeline "
        f"(features.dedup_horizon_hours)"
    )
    return rejected(record, reason)
