"""The feature job's per-record decisions: schema, clock, repeats and lateness."""

from streamrec.features.event_decisions import decode
from streamrec.infra.contracts.events import Event
from streamrec.infra.ports.event_bus import BusRecord

PUBLISHED = 1_767_571_200_000
MINUTE = 60_000


def _record(offset, event_time, published=PUBLISHED):
    event = Event(f"e{offset}", "u", "i", "view", event_time)
    return BusRecord(b"u", event.to_json_bytes(), 0, offset, published)


def test_an_event_timed_too_far_after_its_publish_time_is_refused_with_the_reason():
    records = [
        _record(0, PUBLISHED - 3_600_000),  # history: long before it was sent
        _record(1, PUBLISHED + 59 * MINUTE),  # a device clock running fast
        _record(2, PUBLISHED + 61 * MINUTE),
        _record(3, PUBLISHED + 10 * 365 * 86_400_000),  # a clock years ahead
    ]
    events, refused = decode(records, max_ahead_minutes=60)
    assert [e.event_id for e, _ in events] == ["e0", "e1"]
    assert [r.offset for r in refused] == [2, 3]
    assert refused[0].reason == (
        f"event time {PUBLISHED + 61 * MINUTE} is more than 60 min ahead of its publish time "
        f"{PUBLISHED}: check the sender's clock"
    )


def test_records_without_a_publish_time_are_not_checked_against_it():
    """Backfills from files have no publish time."""
    events, refused = decode([_record(0, PUBLISHED, published=0)], max_ahead_minutes=60)
    assert len(events) == 1 and not refused


def test_malformed_records_are_refused_and_the_rest_kept_in_order():
    records = [_record(0, PUBLISHED), BusRecord(b"u", b"{not json", 0, 1, PUBLISHED)]
    records.append(_record(2, PUBLISHED))
    events, refused = decode(records, max_ahead_minutes=60)
    assert [r.offset for _, r in events] == [0, 2]
    assert [r.offset for r in refused] == [1]
