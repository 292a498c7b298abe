import struct

import pytest

from streamrec.features import tf_example_pb2
from streamrec.features.tfrecord import (
    CorruptRecord,
    decode_example,
    encode_example,
    feature_key,
    int_list_entry,
    read_records,
    write_records,
)


def test_examples_round_trip_with_every_value_kind():
    data = encode_example({"id": "é", "n": 3, "hist": ["a", b"b"], "w": [0.5, 1.0], "empty": []})
    assert decode_example(data) == {
        "id": ["é".encode()],
        "n": [3],
        "hist": [b"a", b"b"],
        "w": [0.5, 1.0],
        "empty": [],
    }


def test_mixed_value_kinds_are_refused():
    with pytest.raises(TypeError, match="feature 'bad'"):
        encode_example({"bad": ["a", 1]})


def test_records_round_trip_and_corruption_is_detected(tmp_path):
    path = tmp_path / "r.tfrecord"
    assert write_records(path, [b"one", b"", b"three"]) == 3
    assert list(read_records(path)) == [b"one", b"", b"three"]
    raw = bytearray(path.read_bytes())
    raw[13] ^= 0xFF  # inside the first record's data
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptRecord, match="bad data checksum"):
        list(read_records(path))
    path.write_bytes(struct.pack("<Q", 99))
    with pytest.raises(CorruptRecord, match="truncated"):
        list(read_records(path))


def test_tensorflow_reads_our_files_as_tf_train_example(tmp_path):
    import tensorflow as tf  # the root conftest prepared its environment

    path = tmp_path / "e.tfrecord"
    write_records(
        path, [encode_example({"user_id": "u1", "timestamp": 17, "history": ["i2", "i1"]})]
    )
    (serialized,) = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    example = tf.train.Example.FromString(serialized)
    assert example.features.feature["user_id"].bytes_list.value == [b"u1"]
    assert example.features.feature["timestamp"].int64_list.value == [17]
    assert example.features.feature["history"].bytes_list.value == [b"i2", b"i1"]


def test_hand_written_bytes_parse_as_the_protobuf_message_with_every_value_kind():
    import tensorflow as tf

    data = encode_example(
        {"s": ["x" * 300, ""], "i": [0, -1, 2**40], "f": [0.25, -3.0], "e": [], "one": 127}
    )
    feature = tf.train.Example.FromString(data).features.feature
    assert feature["s"].bytes_list.value == [b"x" * 300, b""]
    assert feature["i"].int64_list.value == [0, -1, 2**40]
    assert feature["f"].float_list.value == [0.25, -3.0]
    assert feature["e"].WhichOneof("kind") == "bytes_list" and not feature["e"].bytes_list.value
    assert feature["one"].int64_list.value == [127]


def test_equal_features_encode_to_identical_bytes():
    features = {"user_id": "u1", "timestamp": 17, "history": ["i2", "i1"]}
    assert encode_example(features) == encode_example(dict(features))


@pytest.mark.parametrize(
    "value",
    [
        0,
        127,
        128,
        16383,
        16384,
        2**35 - 1,
        2**35,
        1_767_571_544_635,
        2**42 - 1,
        2**42,
        2**63 - 1,
        -1,
    ],
)
def test_ints_of_every_varint_width_parse_as_protobuf(value):
    """Event times take a fast path of their own (six-byte varints), so the widths around it
    are checked against protobuf's parser, both as a feature and as a sequence step."""
    example = tf_example_pb2.Example.FromString(encode_example({"i": [value, value]}))
    assert list(example.features.feature["i"].int64_list.value) == [value, value]
    entry = int_list_entry(feature_key("t"), [value, value])
    lists = tf_example_pb2.FeatureLists.FromString(entry).feature_list
    assert [list(f.int64_list.value) for f in lists["t"].feature] == [[value], [value]]
