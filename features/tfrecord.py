"""TFRecord files of tf.train.Example, written and read without TensorFlow.

A TFRecord file is a sequence of records framed as::

    uint64 length | uint32 masked_crc32c(length) | bytes data | uint32 masked_crc32c(data)

(little-endian; see TensorFlow's ``tensorflow/core/lib/io/record_writer.cc``). Spark workers
use this module so that they need neither TensorFlow's import time nor its memory; training
reads the files with ``tf.data.TFRecordDataset`` as usual.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import google_crc32c

from streamrec.features import tf_example_pb2

_MASK_DELTA = 0xA282EAD8
FeatureValue = bytes | str | int | float | Sequence[bytes | str] | Sequence[int] | Sequence[float]


class CorruptRecord(ValueError):
    """A record whose framing or checksum is wrong: a truncated or damaged file."""


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialises a tf.train.Example; str values become UTF-8 bytes, scalars one-element lists."""
    example = tf_example_pb2.Example()
    for name, value in features.items():
        _fill(example.features.feature[name], name, value)
    return example.SerializeToString()


def decode_example(data: bytes) -> dict[str, list]:
    """The features of a serialised tf.train.Example, as lists (bytes, ints or floats)."""
    example = tf_example_pb2.Example.FromString(data)
    decoded: dict[str, list] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        decoded[name] = list(getattr(feature, kind).value) if kind else []
    return decoded


def _fill(feature: tf_example_pb2.Feature, name: str, value: FeatureValue) -> None:
    values = list(value) if isinstance(value, list | tuple) else [value]
    if all(isinstance(v, bytes | str) for v in values):
        feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        feature.int64_list.value.extend(values)
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        feature.float_list.value.extend(float(v) for v in values)
    else:
        raise TypeError(f"feature {name!r}: values must be all bytes/str, all int or all float")
    if not values:
        feature.bytes_list.SetInParent()  # an empty list still records the feature as present


def write_record(handle: BinaryIO, data: bytes) -> None:
    header = struct.pack("<Q", len(data))
    handle.write(header)
    handle.write(struct.pack("<I", masked_crc32c(header)))
    handle.write(data)
    handle.write(struct.pack("<I", masked_crc32c(data)))


def write_records(path: str | Path, records: Iterable[bytes]) -> int:
    count = 0
    with open(path, "wb") as handle:
        for data in records:
            write_record(handle, data)
            count += 1
    return count


def read_records(path: str | Path) -> Iterator[bytes]:
    """Yields each record's bytes, checking both checksums."""
    with open(path, "rb") as handle:
        while header := handle.read(12):
            if len(header) < 12:
                raise CorruptRecord(f"{path}: truncated record header")
            (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != crc:
                raise CorruptRecord(f"{path}: bad length checksum")
            data, footer = handle.read(length), handle.read(4)
            if len(data) < length or len(footer) < 4:
                raise CorruptRecord(f"{path}: truncated record")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise CorruptRecord(f"{path}: bad data checksum")
            yield data
