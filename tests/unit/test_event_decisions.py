"""The feature job's per-record decisions: schema, clock, repeats and lateness."""

import random

from streamrec.features.event_decisions import decode, split_late
from streamrec.infra.contracts.events import Event
from streamrec.infra.storage.ports.event_bus import BusRecord

PUBLISHED = 1_767_571_200_000
MINUTE = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR


def _record(offset, event_time, published=PUBLISHED, user="u"):
    event = Event(f"e{offset}", user, "i", "view", event_time)
    return BusRecord(user.encode(), event.to_json_bytes(), 0, offset, published)


def _at(offset_ms):
    return PUBLISHED - 400 * DAY + offset_ms


def _decoded(rows):
    """(user, event time) rows -> decoded events, in offset order."""
    start = PUBLISHED - 400 * DAY
    records = [_record(n, start + t, user=u) for n, (u, t) in enumerate(rows)]
    events, refused = decode(records, max_ahead_minutes=60)
    assert not refused
    return events


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


def test_another_users_newer_events_never_make_an_event_late():
    # A dump sorted by user: the heavy user's year comes first, then a user from January.
    heavy = [("heavy", n * DAY) for n in range(365)]
    january = [("light", 5 * DAY), ("light", 15 * DAY)]
    on_time, late, after = split_late(_decoded(heavy + january), {}, horizon_hours=24)
    assert (len(on_time), late) == (367, [])
    assert after == {"heavy": _at(364 * DAY), "light": _at(15 * DAY)}


def test_an_event_older_than_its_own_users_newest_by_the_horizon_is_late_with_the_reason():
    rows = [("u", 10 * DAY), ("u", 9 * DAY + HOUR), ("u", 8 * DAY), ("v", 8 * DAY)]
    on_time, late, after = split_late(_decoded(rows), {}, horizon_hours=24)
    assert [e.event_id for e, _ in on_time] == ["e0", "e1", "e3"]  # 23h behind: on time
    (refused,) = late
    assert refused.offset == 2
    assert refused.reason == (
        f"late: event time {_at(8 * DAY)} is more than 24h older than user 'u''s newest "
        f"accepted event ({_at(10 * DAY)}), on their own timeline (features.dedup_horizon_hours)"
    )
    assert after == {"u": _at(10 * DAY), "v": _at(8 * DAY)}


def test_watermarks_from_earlier_batches_count_and_are_not_changed():
    earlier = {"u": _at(10 * DAY), "w": _at(5 * DAY)}
    rows = [("u", 8 * DAY), ("u", 9 * DAY + 1), ("w", 4 * DAY + 1)]
    given = dict(earlier)
    on_time, late, after = split_late(_decoded(rows), given, horizon_hours=24)
    assert [e.event_id for e, _ in on_time] == ["e1", "e2"]
    assert [r.offset for r in late] == [0]
    assert after == earlier  # older on-time events keep the watermark
    assert given == earlier


def test_where_batches_are_cut_never_changes_a_decision():
    rng = random.Random(7)
    rows = [(f"u{rng.randrange(20)}", rng.randrange(0, 30 * DAY)) for _ in range(2000)]
    events = _decoded(rows)
    whole_on_time, whole_late, whole_after = split_late(events, {}, horizon_hours=48)
    assert whole_late, "the sample should hold late events for this to test anything"
    on_time, late, watermarks = [], [], {}
    for start, end in ((0, 1), (1, 700), (700, 701), (701, 2000)):
        kept, refused, after = split_late(events[start:end], watermarks, horizon_hours=48)
        on_time += kept
        late += refused
        watermarks = {**watermarks, **after}
    assert on_time == whole_on_time and late == whole_late and watermarks == whole_after
