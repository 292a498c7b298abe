from streamrec.features.examples import event_date, point_in_time_examples
from streamrec.features.tfrecord import encode_example
from streamrec.infra.contracts.events import Event
from streamrec.infra.storage.ports.online_store import HistoryEntry


def _events(*rows, user="u"):
    return [Event(e, user, i, "view", t) for e, i, t in rows]


def _histories(examples):
    return [example.history for example in examples]


def test_history_is_strictly_earlier_most_recent_first_and_capped():
    events = _events(("e1", "a", 10), ("e2", "b", 20), ("e3", "c", 30), ("e4", "d", 40))
    examples = point_in_time_examples(events, {}, history_length=2)
    assert _histories(examples) == [[], ["a"], ["b", "a"], ["c", "b"]]
    assert [e.item_id for e in examples] == ["a", "b", "c", "d"]


def test_events_at_the_same_instant_do_not_see_each_other():
    examples = point_in_time_examples(_events(("e1", "a", 10), ("e2", "b", 10)), {}, 5)
    assert _histories(examples) == [[], []]


def test_stored_history_from_earlier_batches_is_used():
    prior = {"u": [HistoryEntry(1, "p1", "x"), HistoryEntry(2, "p2", "y")]}
    examples = point_in_time_examples(_events(("e1", "a", 10)), prior, 5)
    assert _histories(examples) == [["y", "x"]]


def test_late_event_gets_only_history_older_than_itself():
    prior = {"u": [HistoryEntry(5, "p1", "x"), HistoryEntry(50, "p2", "y")]}
    examples = point_in_time_examples(_events(("e1", "late", 20)), prior, 5)
    assert _histories(examples) == [["x"]]


def test_users_do_not_see_each_others_events_and_order_is_kept():
    events = (
        _events(("e1", "a", 10)) + _events(("e2", "b", 20), user="v") + _events(("e3", "c", 30))
    )
    examples = point_in_time_examples(events, {}, 5)
    assert [e.event_id for e in examples] == ["e1", "e2", "e3"]
    assert _histories(examples) == [[], [], ["a"]]


def test_replaying_a_batch_whose_events_are_already_stored_changes_nothing():
    events = _events(("e1", "a", 10), ("e2", "b", 20))
    first = point_in_time_examples(events, {"u": [HistoryEntry(1, "p", "x")]}, 5)
    stored = [HistoryEntry(1, "p", "x"), HistoryEntry(10, "e1", "a"), HistoryEntry(20, "e2", "b")]
    assert point_in_time_examples(events, {"u": stored}, 5) == first


def test_examples_are_dated_by_utc_event_time():
    assert event_date(1_767_571_199_999) == "2026-01-04"
    assert event_date(1_767_571_200_000) == "2026-01-05"
    assert point_in_time_examples(_events(("e", "a", 1_767_571_200_000)), {}, 1)[0].date == (
        "2026-01-05"
    )


def test_serialized_examples_are_the_generic_encoding_of_their_features():
    # Every history is non-empty: the generic encoder cannot tell an empty list's type.
    prior = {
        "u": [HistoryEntry(1, "p1", "x", "view"), HistoryEntry(2, "p2", "y")],
        "v": [HistoryEntry(3, "p3", "z", "click")],
    }
    events = _events(("e1", "a", 10), ("e2", "b", 20)) + _events(("e3", "c", 30), user="v")
    for example in point_in_time_examples(events, prior, 5) * 2:  # the second time memoised
        assert example.serialize() == encode_example(example.features())


def test_histories_carry_their_times_and_types_and_an_empty_one_parses_as_int64():
    import tensorflow as tf

    prior = {"u": [HistoryEntry(1, "p1", "x", "view"), HistoryEntry(2, "p2", "y")]}
    events = _events(("e1", "a", 10)) + _events(("e2", "b", 20), user="v")
    first, fresh = point_in_time_examples(events, prior, 5)
    assert (first.history, first.history_times, first.history_types) == (
        ["y", "x"],
        [2, 1],
        ["", "view"],  # an entry stored before feature spec 3 has no type
    )
    spec_ = {
        "history_timestamp": tf.io.VarLenFeature(tf.int64),
        "history_event_type": tf.io.VarLenFeature(tf.string),
    }
    parsed = tf.io.parse_example([first.serialize(), fresh.serialize()], spec_)
    times = tf.sparse.to_dense(parsed["history_timestamp"], default_value=-1).numpy()
    assert times.tolist() == [[2, 1], [-1, -1]]


def test_a_repeated_event_id_is_one_entry_of_the_history():
    events = _events(("e1", "a", 10), ("e1", "a", 10), ("e2", "b", 20))
    examples = point_in_time_examples(events, {}, 5)
    assert _histories(examples)[-1] == ["a"]


def test_the_cyclic_collector_is_paused_only_inside_a_range():
    import gc

    from streamrec.features.partition_task import cyclic_gc_paused

    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a caller that had disabled it keeps it disabled
    finally:
        gc.enable()
