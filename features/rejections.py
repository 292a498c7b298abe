"""Records the feature job turns away, each sent to a topic with the reason, never dropped.

Records that break the event schema go to the dead-letter topic; valid events older than the
deduplication horizon go to the late topic. Both carry the original key and a JSON value::

    {"reason": "...", "source": {"topic": "events", "partition": 2, "offset": 1234},
     "value": "<original value>", "value_encoding": "utf-8" | "base64", "rejected_at_ms": ...}

A replayed batch sends its letters again; ``source`` identifies a letter, so a consumer can
drop the repeats.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from typing import NamedTuple

from streamrec.infra.storage.ports.event_bus import EventBus


class RejectedRecord(NamedTuple):
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    reason: str


def rejection_value(record: RejectedRecord, source_topic: str) -> bytes:
    raw = record.value or b""
    try:
        value, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    letter = {
        "reason": record.reason,
        "source": {"topic": source_topic, "partition": record.partition, "offset": record.offset},
        "value": value,
        "value_encoding": encoding,
        "rejected_at_ms": int(time.time() * 1000),
    }
    return json.dumps(letter, ensure_ascii=False).encode()


def send_rejections(
    bus: EventBus, topic: str, source_topic: str, records: Iterable[RejectedRecord]
) -> int:
    """Publishes the records and returns once the broker acknowledged all of them."""
    return bus.publish(
        topic, ((record.key, rejection_value(record, source_topic)) for record in records)
    )
