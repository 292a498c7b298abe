"""TFRecord files of tf.train.Example and SequenceExample, written and read without TensorFlow.

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
    """Serialises a tf.train.Example; str values become UTF-8 bytes, scalars one-element lists.

    Written by hand rather than through the protobuf classes: for this fixed, shallow message
    it is about three times faster, and features are written in the mapping's order, so equal
    input always gives identical bytes (a rebuilt file is byte-identical). The unit tests check
    the bytes against TensorFlow's own parser.
    """
    return example_of([_map_entry(name, value) for name, value in features.items()])


def example_of(entries: Sequence[bytes]) -> bytes:
    """The Example message holding these feature entries (see the ``*_entry`` functions)."""
    body = b"".join(entries)
    return b"\x0a" + _varint(len(body)) + body  # Example.features


def feature_key(name: str) -> bytes:
    """The leading bytes of every entry of feature ``name``; build them once per feature."""
    data = name.encode()
    return b"\x0a" + _varint(len(data)) + data + b"\x12"


def string_entry(key: bytes, value: str) -> bytes:
    """The entry of a feature holding one string, for :func:`example_of`."""
    return _entry(key, _one_string(value))


def int_entry(key: bytes, value: int) -> bytes:
    return _entry(key, _ints([value]))


def ints_entry(key: bytes, values: Sequence[int]) -> bytes:
    return _entry(key, _ints(values))


def strings_entry(key: bytes, values: list[str]) -> bytes:
    return _entry(key, _strings("", values) if values else b"\x0a\x00")


def sequence_example_of(context: Sequence[bytes], feature_lists: Sequence[bytes]) -> bytes:
    """The SequenceExample holding these context entries (as for :func:`example_of`) and
    feature lists (see the ``*_list_entry`` functions)."""
    context_body, lists_body = b"".join(context), b"".join(feature_lists)
    return (
        b"\x0a" + _varint(len(context_body)) + context_body  # SequenceExample.context
        + b"\x12" + _varint(len(lists_body)) + lists_body  # SequenceExample.feature_lists
    )  # fmt: skip


def string_list_entry(key: bytes, values: Sequence[str], memoise: bool = True) -> bytes:
    """The FeatureLists entry of feature ``key`` (:func:`feature_key`): one string per step.

    Ids of items and types repeat across steps, so their steps are memoised; pass
    ``memoise=False`` for values that never repeat (event ids)."""
    if not memoise:
        return _entry(key, b"".join([_string_step(v) for v in values]))
    get = _STRING_STEPS.get
    return _entry(key, b"".join([get(v) or _memoised_string_step(v) for v in values]))


def strings_list_entry(key: bytes, values: Sequence[tuple[str, ...]]) -> bytes:
    """The FeatureLists entry of a feature whose steps hold several strings each (context
    tokens). Contexts repeat across events, so steps are memoised by their values."""
    get = _STRINGS_STEPS.get
    return _entry(key, b"".join([get(v) or _memoised_strings_step(v) for v in values]))


def int_list_entry(key: bytes, values: Sequence[int]) -> bytes:
    """The FeatureLists entry of feature ``key``: one int64 per step."""
    return _entry(key, b"".join([_int_step(v) for v in values]))


def _string_step(value: str) -> bytes:
    feature = _one_string(value)
    return b"\x0a" + _varint(len(feature)) + feature


def _memoised_string_step(value: str) -> bytes:
    if len(_STRING_STEPS) >= _STRING_FIELDS_MAX:
        _STRING_STEPS.clear()
    step = _STRING_STEPS[value] = _string_step(value)
    return step


def _memoised_strings_step(values: tuple[str, ...]) -> bytes:
    if len(_STRINGS_STEPS) >= _STRING_FIELDS_MAX:
        _STRINGS_STEPS.clear()
    feature = _strings("", list(values)) if values else b"\x0a\x00"
    step = _STRINGS_STEPS[values] = b"\x0a" + _varint(len(feature)) + feature
    return step


def _int_step(value: int) -> bytes:
    if _SIX_BYTES_MIN <= value < _SIX_BYTES_END:  # an event time: its step's framing is fixed
        return _TIME_STEP + _varint(value)
    feature = _ints((value,))
    return b"\x0a" + _varint(len(feature)) + feature


def _map_entry(name: str, value: FeatureValue) -> bytes:
    """One Features.feature map entry: key, then the Feature message."""
    if isinstance(value, str):
        feature = _one_string(value)
    elif isinstance(value, list) and value and isinstance(value[0], str):
        feature = _strings(name, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        feature = _ints([value])
    else:
        feature = _feature(name, value)
    return _entry(_KEYS.get(name) or _key(name), feature)


def _entry(key: bytes, feature: bytes) -> bytes:
    entry = key + _varint(len(feature)) + feature
    return b"\x0a" + _varint(len(entry)) + entry


def _key(name: str) -> bytes:
    _KEYS[name] = key = feature_key(name)
    return key


def _one_string(value: str) -> bytes:
    data = value.encode()
    field = b"\x0a" + _varint(len(data)) + data
    return b"\x0a" + _varint(len(field)) + field  # Feature.bytes_list with one value


def _strings(name: str, values: list) -> bytes:
    get = _STRING_FIELDS.get
    try:
        inner = b"".join([get(v) or _string_field(v) for v in values])
    except (AttributeError, TypeError):
        raise TypeError(_MIXED.format(name=name)) from None
    return b"\x0a" + _varint(len(inner)) + inner  # Feature.bytes_list


def _ints(values: Sequence[int]) -> bytes:
    if values and min(values) >= 0:
        packed = b"".join(map(_varint, values))
    else:  # negative int64s go as their two's complement
        packed = b"".join([_varint(v & 0xFFFFFFFFFFFFFFFF) for v in values])
    return b"\x1a" + _packed(packed)  # Feature.int64_list


def _feature(name: str, value: FeatureValue) -> bytes:
    values = value if isinstance(value, list | tuple) else (value,)
    if all(isinstance(v, bytes | str) for v in values):
        return _strings(name, list(values)) if values else b"\x0a\x00"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return _ints(values)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return b"\x12" + _packed(struct.pack(f"<{len(values)}f", *values))  # Feature.float_list
    raise TypeError(_MIXED.format(name=name))


def _string_field(value: bytes | str) -> bytes:
    """One length-delimited value of a BytesList. Ids repeat a lot, so fields are memoised."""
    data = value if isinstance(value, bytes) else value.encode()
    field = b"\x0a" + _varint(len(data)) + data
    if len(_STRING_FIELDS) >= _STRING_FIELDS_MAX:
        _STRING_FIELDS.clear()
    _STRING_FIELDS[value] = field
    return field


def _packed(data: bytes) -> bytes:
    """A list message with one packed repeated field 1, itself length-delimited."""
    inner = b"\x0a" + _varint(len(data)) + data if data else b""
    return _varint(len(inner)) + inner


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if _SIX_BYTES_MIN <= value < _SIX_BYTES_END:  # every event time, in ms, takes six
        return _PAIRS[value & 0x3FFF] + _PAIRS[value >> 14 & 0x3FFF] + _LAST_PAIRS[value >> 28]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_MIXED = "feature {name!r}: values must be all bytes/str, all int or all float"
_SMALL = [bytes([n]) for n in range(0x80)]
_SIX_BYTES_MIN, _SIX_BYTES_END = 1 << 35, 1 << 42
_TIME_STEP = b"\x0a\x0a\x1a\x08\x0a\x06"  # Feature, int64_list, its packed field: 6 bytes
_PAIRS = [bytes((n & 0x7F | 0x80, n >> 7 | 0x80)) for n in range(0x4000)]  # 14 bits, more follow
_LAST_PAIRS = [bytes((n & 0x7F | 0x80, n >> 7)) for n in range(0x4000)]  # 14 bits, the last
_KEYS: dict[str, bytes] = {}
_STRING_FIELDS: dict[bytes | str, bytes] = {}
_STRING_FIELDS_MAX = 1_000_000
_STRING_STEPS: dict[str, bytes] = {}
_STRINGS_STEPS: dict[tuple[str, ...], bytes] = {}


def decode_example(data: bytes) -> dict[str, list]:
    """The features of a serialised tf.train.Example, as lists (bytes, ints or floats)."""
    example = tf_example_pb2.Example.FromString(data)
    return {name: _values(feature) for name, feature in example.features.feature.items()}


def decode_sequence_example(data: bytes) -> tuple[dict[str, list], dict[str, list[list]]]:
    """The context features and the feature lists (one list of values per step) of a
    serialised tf.train.SequenceExample."""
    message = tf_example_pb2.SequenceExample.FromString(data)
    context = {name: _values(f) for name, f in message.context.feature.items()}
    lists = {
        name: [_values(step) for step in feature_list.feature]
        for name, feature_list in message.feature_lists.feature_list.items()
    }
    return context, lists


def _values(feature: tf_example_pb2.Feature) -> list:
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def write_record(handle: BinaryIO, data: bytes) -> None:
    header = struct.pack("<Q", len(data))
    crcs = struct.pack("<I", masked_crc32c(header)), struct.pack("<I", masked_crc32c(data))
    handle.write(b"".join((header, crcs[0], data, crcs[1])))


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
