"""Event schema v1: the written contract between app backends, ingestion and every later stage.

An event is one JSON object on the ``events`` topic, keyed by ``user_id``::

    {"event_id": "e-000001", "user_id": "u-0042", "item_id": "i-00017",
     "event_type": "click", "timestamp": 1767571200000, "context": {"device": "web"}}

- ``event_id``: unique string, the identity of the event (the feature job drops repeats of an
  id within a micro-batch, and history entries are unique per id).
- ``user_id``, ``item_id``: non-empty strings of at most 256 characters.
- ``event_type``: one of :data:`EVENT_TYPES`.
- ``timestamp``: event time (not arrival time) in milliseconds since the Unix epoch, between
  2000-01-01 and 2100-01-01; values in seconds are refused rather than silently misread.
- ``context``: optional map of string to string (device, page, experiment arm...), at most
  :data:`MAX_CONTEXT_ENTRIES` entries, keys non-empty, keys and values at most
  :data:`MAX_CONTEXT_LENGTH` characters. It is what the app knew when the event happened, as a
  ranking request carries it, so the query tower learns to read it (feature spec 4): the
  limits are the ranking API's, so a context that trains is one that can be asked with.

Fields not listed here are refused: a misspelt field name must not pass as a missing optional one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

SCHEMA_VERSION = 1
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
MAX_ID_LENGTH = 256
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TIMESTAMP_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_CONTEXT_ENTRIES = 32
MAX_CONTEXT_LENGTH = 256
_REQUIRED = ("event_id", "user_id", "item_id", "event_type", "timestamp")
_FIELDS = frozenset((*_REQUIRED, "context"))


class InvalidEvent(ValueError):
    """An event that breaks the contract; its message is the reason, fit for a dead letter."""


@dataclass(frozen=True)
class Event:
    event_id: str
    user_id: str
    item_id: str
    event_type: str
    timestamp: int
    context: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "event_type": self.event_type,
            "timestamp": self.timestamp,
        }
        if self.context:
            record["context"] = dict(self.context)
        return record

    def to_json(self) -> str:
        return self.to_json_bytes().decode()

    def to_json_bytes(self) -> bytes:
        """Compact UTF-8 JSON, as it travels on the ``events`` topic."""
        return orjson.dumps(self.to_dict())


def parse_event(raw: str | bytes) -> Event:
    """Decodes and validates one JSON event; raises :class:`InvalidEvent` naming what is wrong."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from exc
    return event_from_dict(record)


def event_from_dict(record: object) -> Event:
    """Validates an already-decoded event object; raises :class:`InvalidEvent`.

    The feature job checks every event it reads, so the common case (a valid event) is one
    pass of cheap tests; the reasons are worked out only once something fails.
    """
    if type(record) is not dict:
        raise InvalidEvent(f"expected a JSON object, got {type(record).__name__}")
    try:
        event_id, user_id, item_id = record["event_id"], record["user_id"], record["item_id"]
        event_type, timestamp = record["event_type"], record["timestamp"]
    except KeyError:
        missing = [name for name in _REQUIRED if name not in record]
        raise InvalidEvent(f"missing field(s): {', '.join(missing)}") from None
    if len(record) > len(_REQUIRED) and not record.keys() <= _FIELDS:
        raise InvalidEvent(f"unknown field(s): {', '.join(sorted(set(record) - _FIELDS))}")
    if not (_valid_id(event_id) and _valid_id(user_id) and _valid_id(item_id)):
        for name in ("event_id", "user_id", "item_id"):
            _check_id(name, record[name])
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(f"event_type {event_type!r} is not one of {', '.join(EVENT_TYPES)}")
    return Event(
        event_id=event_id,
        user_id=user_id,
        item_id=item_id,
        event_type=event_type,
        timestamp=_check_timestamp(timestamp),
        context=_check_context(record.get("context")),
    )


def _valid_id(value: object) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and not value.isspace()


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidEvent(f"{name} is longer than {MAX_ID_LENGTH} characters")


def _check_timestamp(value: object) -> int:
    if type(value) is int and MIN_TIMESTAMP_MS <= value < MAX_TIMESTAMP_MS:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"timestamp must be an integer (ms since epoch), got {value!r}")
    if MIN_TIMESTAMP_MS <= value < MAX_TIMESTAMP_MS:
        return value
    if MIN_TIMESTAMP_MS // 1000 <= value < MAX_TIMESTAMP_MS // 1000:
        raise InvalidEvent(f"timestamp {value} looks like seconds; send milliseconds since epoch")
    raise InvalidEvent(f"timestamp {value} is outside 2000-01-01..2100-01-01 (ms since epoch)")


def _check_context(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"context must be an object of strings, got {type(value).__name__}")
    if len(value) > MAX_CONTEXT_ENTRIES:
        raise InvalidEvent(f"context has {len(value)} entries; at most {MAX_CONTEXT_ENTRIES}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidEvent(f"context[{key[:40]!r}] must be a string, got {item!r:.40}")
        if not key or len(key) > MAX_CONTEXT_LENGTH or len(item) > MAX_CONTEXT_LENGTH:
            raise InvalidEvent(
                f"context[{key[:40]!r}]: keys must be non-empty, keys and values at most "
                f"{MAX_CONTEXT_LENGTH} characters"
            )
    return dict(value)
