import pandas as pd

from streamrec.features.examples import event_date, point_in_time_examples
from streamrec.infra.ports.online_store import HistoryEntry


def _events(*rows):
    return pd.DataFrame(
        [
            {"event_id": e, "user_id": "u", "item_id": i, "event_type": "view", "timestamp": t}
            for e, i, t in rows
        ]
    )


def test_history_is_strictly_earlier_most_recent_first_and_capped():
    events = _events(("e1", "a", 10), ("e2", "b", 20), ("e3", "c", 30), ("e4", "d", 40))
    examples = point_in_time_examples(events, [], history_length=2)
    assert examples["history"].tolist() == [[], ["a"], ["b", "a"], ["c", "b"]]
    assert examples["item_id"].tolist() == ["a", "b", "c", "d"]


def test_events_at_the_same_instant_do_not_see_each_other():
    examples = point_in_time_examples(_events(("e1", "a", 10), ("e2", "b", 10)), [], 5)
    assert examples["history"].tolist() == [[], []]


def test_stored_history_from_earlier_batches_is_used():
    prior = [HistoryEntry(1, "p1", "x"), HistoryEntry(2, "p2", "y")]
    examples = point_in_time_examples(_events(("e1", "a", 10)), prior, 5)
    assert examples["history"].tolist() == [["y", "x"]]


def test_late_event_gets_only_history_older_than_itself():
    prior = [HistoryEntry(5, "p1", "x"), HistoryEntry(50, "p2", "y")]
    examples = point_in_time_examples(_events(("e1", "late", 20)), prior, 5)
    assert examples["history"].tolist() == [["x"]]


def test_replaying_a_batch_whose_events_are_already_stored_changes_nothing():
    events = _events(("e1", "a", 10), ("e2", "b", 20))
    first = point_in_time_examples(events, [HistoryEntry(1, "p", "x")], 5)
    stored = [HistoryEntry(1, "p", "x"), HistoryEntry(10, "e1", "a"), HistoryEntry(20, "e2", "b")]
    pd.testing.assert_frame_equal(point_in_time_examples(events, stored, 5), first)


def test_examples_are_dated_by_utc_event_time():
    assert event_date(1_767_571_199_999) == "2026-01-04"
    assert event_date(1_767_571_200_000) == "2026-01-05"
