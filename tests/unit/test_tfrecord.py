import struct

import pytest

from streamrec.features.tfrecord import (
    CorruptRecord,
    decode_example,
    encode_example,
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
