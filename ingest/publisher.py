"""Sends events to the ``events`` topic: JSON values keyed by ``user_id``.

Keying by user keeps each user's events in one partition, in order, which is what the
feature job's per-user history relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from streamrec.infra.contracts.events import Event
from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_event_bus
from streamrec.ingest.event_file import count_events, read_events


def publish(
    config: Config, events: Iterable[Event], total: int | None = None, progress: bool = True
) -> int:
    """Publishes events and waits until the broker has acknowledged every one of them.

    Returns the number published. If any send fails, raises after flushing the rest, saying how
    many were acknowledged. A retry may send some events twice; they keep their ``event_id``.
    """
    bus = open_event_bus(config)
    topic = config.kafka.events_topic
    bus.ensure_topic(topic)
    bar = tqdm(total=total, unit="ev", desc="publish", disable=not progress, leave=False)
    try:
        return bus.publish(topic, _messages(events, bar))
    finally:
        bar.close()


def publish_file(config: Config, path: str | Path, progress: bool = False) -> int:
    """Validates a whole JSON Lines file, then publishes it: a bad line stops it before any send."""
    total = count_events(path)
    open_event_bus(config).ping()
    return publish(config, read_events(path), total=total, progress=progress)


def _messages(events: Iterable[Event], bar: tqdm) -> Iterator[tuple[bytes, bytes]]:
    for event in events:
        yield event.user_id.encode(), event.to_json_bytes()
        bar.update()
