"""The sequences layout: windows per user and date, read back by TensorFlow, and held-out
histories that equal the per-event layout's point-in-time histories."""

import dataclasses
import random

import numpy as np

from streamrec.features.example_files import StagedExampleWriter
from streamrec.features.examples import point_in_time_examples
from streamrec.features.sequence_windows import sequence_windows
from streamrec.features.tfrecord import decode_sequence_example
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.feature_spec import ExampleFile
from streamrec.infra.core.config import load_config
from streamrec.infra.storage import open_offline_examples
from streamrec.infra.storage.ports.online_store import HistoryEntry

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _event(event_id, user, item, t, kind="view", context=None):
    return Event(event_id, user, item, kind, T0 + t, context or {})


def test_one_window_per_user_and_date_in_time_order_with_the_history_before_it():
    events = [
        _event("e3", "u", "c", 30),
        _event("x1", "v", "z", 5),
        _event("e1", "u", "a", 10),
        _event("e4", "u", "d", DAY + 1),
        _event("e1", "u", "a", 10),  # a repeat: once in the window
    ]
    prior = {"u": [HistoryEntry(T0 - 5, "p1", "old")]}
    windows = sequence_windows(events, prior, history_length=3)
    assert [(w.user_id, w.date) for w in windows] == [
        ("u", "2026-01-01"),
        ("u", "2026-01-02"),
        ("v", "2026-01-01"),
    ]
    assert [[e.event_id for e in w.events] for w in windows] == [["e1", "e3"], ["e4"], ["x1"]]
    assert [w.history for w in windows] == [["old"], ["c", "a", "old"], []]
    assert [w.examples for w in windows] == [2, 1, 1]


def test_a_window_serialises_as_a_sequence_example_that_tensorflow_parses():
    import tensorflow as tf

    context = {"surface": "deals", "device": "ios"}
    events = [_event("e1", "u", "a", 10, "click", context), _event("e2", "u", "é", 20)]
    (window,) = sequence_windows(events, {"u": [HistoryEntry(T0, "p", "h", "view")]}, 5)
    data = window.serialize()
    context, lists = decode_sequence_example(data)
    assert context == {
        spec.USER_ID: [b"u"],
        spec.HISTORY: [b"h"],
        spec.HISTORY_TIMESTAMP: [T0],
        spec.HISTORY_EVENT_TYPE: [b"view"],
    }
    assert lists[spec.TIMESTAMP] == [[T0 + 10], [T0 + 20]]
    assert lists[spec.ITEM_ID] == [[b"a"], ["é".encode()]]
    assert lists[spec.CONTEXT_TOKENS] == [[b"device=ios", b"surface=deals"], []]
    parsed_context, parsed_lists = tf.io.parse_single_sequence_example(
        data,
        context_features={spec.USER_ID: tf.io.FixedLenFeature([], tf.string)},
        sequence_features={
            spec.EVENT_ID: tf.io.FixedLenSequenceFeature([], tf.string),
            spec.EVENT_TYPE: tf.io.FixedLenSequenceFeature([], tf.string),
            spec.TIMESTAMP: tf.io.FixedLenSequenceFeature([], tf.int64),
        },
    )
    assert parsed_context[spec.USER_ID].numpy() == b"u"
    assert parsed_lists[spec.EVENT_ID].numpy().tolist() == [b"e1", b"e2"]
    assert parsed_lists[spec.EVENT_TYPE].numpy().tolist() == [b"click", b"view"]
    assert parsed_lists[spec.TIMESTAMP].numpy().tolist() == [T0 + 10, T0 + 20]


def _as_committed(staged) -> ExampleFile:
    return dataclasses.replace(staged.example_file("test"), path=staged.staged)


def _random_stream(seed, n=400):
    rng = random.Random(seed)
    hour = DAY // 24  # coarse times: many events share one, as the lines of an invoice do
    return [
        _event(f"e{i}", f"u{rng.randrange(6)}", f"i{rng.randrange(30)}", hour * rng.randrange(72))
        for i in range(n)
    ]


def _store(directory):
    config = load_config(environ={"STREAMREC_OFFLINE_EXAMPLES_PATH": str(directory)})
    return open_offline_examples(config)


def _write_as_batches(events, directory, batches, length):
    """As the stream does: each batch's windows, with the history stored before it."""
    stored: dict[str, list[HistoryEntry]] = {}
    files = []
    for number in range(batches):
        batch = events[number::batches]
        writer = StagedExampleWriter(_store(directory), f"b{number}", part=0, layout="sequences")
        for window in sequence_windows(batch, stored, length):
            writer.write(window)
        files += [_as_committed(staged) for staged in writer.close()]
        for e in batch:
            stored.setdefault(e.user_id, []).append(
                HistoryEntry(e.timestamp, e.event_id, e.item_id)
            )
    return files


def test_read_back_the_events_and_the_point_in_time_histories_of_the_per_event_layout(tmp_path):
    from streamrec.training.sequence_files import holdout_histories, read_sequence_files

    events = _random_stream(seed=3)
    length = 4
    files = _write_as_batches(events, tmp_path, batches=5, length=length)
    assert sum(f.examples for f in files) == len(events)
    read = read_sequence_files(files, length)
    order = np.lexsort((read.events[spec.EVENT_ID], read.events[spec.TIMESTAMP]))
    columns = {name: column[order] for name, column in read.events.items()}
    assert sorted(columns[spec.EVENT_ID]) == sorted(e.event_id for e in events)

    late = columns[spec.TIMESTAMP] >= T0 + 2 * DAY
    histories = holdout_histories(columns, read.contexts, late, length)

    expected = {x.event_id: x for x in point_in_time_examples(events, {}, length)}
    found = zip(
        columns[spec.EVENT_ID][late],
        histories[spec.HISTORY],
        histories[spec.HISTORY_TIMESTAMP],
        histories[spec.HISTORY_EVENT_TYPE],
        strict=True,
    )
    for event_id, items, times, types in found:
        real = items != ""
        example = expected[event_id]
        assert items[real].tolist() == example.history, event_id
        assert times[real].tolist() == example.history_times, event_id
        assert types[real].tolist() == example.history_types, event_id
        assert (times[~real] == -1).all() and (types[~real] == "").all()


def test_the_oldest_window_s_context_continues_a_history_from_before_the_data(tmp_path):
    from streamrec.training.sequence_files import holdout_histories, read_sequence_files

    earlier = [HistoryEntry(T0 - 20, "p1", "x"), HistoryEntry(T0 - 10, "p2", "y")]
    events = [_event("e1", "u", "a", 10), _event("e2", "u", "b", 20)]
    writer = StagedExampleWriter(_store(tmp_path), "b", part=0, layout="sequences")
    for window in sequence_windows(events, {"u": earlier}, 5):
        writer.write(window)
    read = read_sequence_files([_as_committed(staged) for staged in writer.close()], 5)
    histories = holdout_histories(read.events, read.contexts, np.array([False, True]), 5)
    assert [h for h in histories[spec.HISTORY][0] if h] == ["a", "y", "x"]
    assert histories[spec.HISTORY_TIMESTAMP][0].tolist()[:3] == [T0 + 10, T0 - 10, T0 - 20]
