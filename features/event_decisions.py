"""The decisions the feature job takes about each record, shared by the stream and backfills.

Each is a pure function of the records in offset order (and, for lateness, the watermark the
partition had before them), which is what lets a replayed batch or a backfill decide exactly
as the stream did.
"""

from __future__ import annotations

from streamrec.features.rejections import RejectedRecord
from streamrec.infra.contracts.events import Event, InvalidEvent, parse_event
from streamrec.infra.ports.event_bus import BusRecord

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
    events: list[Decoded], watermark: int | None, horizon_hours: float
) -> tuple[list[Decoded], list[RejectedRecord], int | None]:
    """On-time events, late ones (with the reason), and the watermark after them.

    Late means older than the partition's watermark when the event arrived, minus the horizon.
    The watermark is the newest event time the partition had carried before the record (offset
    order), so a stream that replays history in time order is not late.
    """
    horizon_ms = int(horizon_hours * _HOUR_MS)
    on_time, late = [], []
    for event, record in events:
        if watermark is not None and event.timestamp < watermark - horizon_ms:
            late.append(_late(record, event, watermark, horizon_hours))
        else:
            on_time.append((event, record))
            watermark = event.timestamp if watermark is None else max(watermark, event.timestamp)
    return on_time, late, watermark


def rejected(record: BusRecord, reason: str) -> RejectedRecord:
    return RejectedRecord(record.key, record.value, record.partition, record.offset, reason)


def _ahead(event: Event, record: BusRecord, max_ahead_minutes: float) -> str:
    return (
        f"event time {event.timestamp} is more than {max_ahead_minutes:g} min ahead of its "
        f"publish time {record.timestamp}: check the sender's clock"
    )


def _late(record: BusRecord, event: Event, watermark: int, horizon_hours: float) -> RejectedRecord:
    reason = (
        f"late: event time {event.timestamp} is more than {horizon_hours:g}h older than "
        f"partition {record.partition}'s watermark {watermark}"
    )
    return rejected(record, reason)
