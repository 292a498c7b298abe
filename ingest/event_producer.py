"""The client that app backends use to send events to streamrec through Kafka.

It validates each event against the event schema before anything leaves the process, keys it
by ``user_id`` (so a user's events stay in order in one partition) and sends it in batches with
``acks=all`` and idempotent retries. Every event's outcome is reported: ``send`` returns its
delivery, ``flush`` returns the events that were not acknowledged, and ``close`` raises if any
failure was never collected by a flush, so none can go unnoticed::

    with EventProducer(config) as producer:
        producer.send({"event_id": "e-1", "user_id": "u-1", "item_id": "i-9",
                       "event_type": "click", "timestamp": 1767571200000})
        failed = producer.flush()  # [] when every event was acknowledged
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from streamrec.infra.contracts.events import Event, InvalidEvent, event_from_dict, parse_event
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StoreUnavailable, StreamrecError
from streamrec.infra.storage import open_event_bus
from streamrec.infra.storage.ports.event_bus import BusProducer, Delivery


@dataclass(frozen=True)
class FailedEvent:
    event: Event
    reason: str


class DeliveryFailed(StreamrecError):
    """Events were accepted by the producer but not acknowledged by Kafka."""

    def __init__(self, failed: list[FailedEvent]) -> None:
        self.failed = failed
        super().__init__(
            f"{len(failed)} event(s) were not acknowledged by Kafka, the first "
            f"{failed[0].event.event_id!r}: {failed[0].reason}"
        )


class EventProducer:
    """Thread-safe; one per process is enough."""

    def __init__(self, config: Config, topic: str | None = None) -> None:
        bus = open_event_bus(config)
        self.topic = topic or config.kafka.events_topic
        bus.ensure_topic(self.topic)
        self._producer = bus.producer(self.topic)
        self._max_ahead_minutes = config.features.max_event_time_ahead_minutes
        self._lock = threading.Lock()
        self._pending: list[tuple[Event, Delivery]] = []

    def send(self, event: Event | Mapping | str | bytes) -> Delivery:
        """Validates and queues one event; raises :class:`InvalidEvent` if it breaks the schema.

        The delivery tells when Kafka acknowledged the event, or why it did not.
        """
        valid = validated(event, self._max_ahead_minutes)
        delivery = send_event(self._producer, valid)
        with self._lock:
            self._pending.append((valid, delivery))
        return delivery

    def flush(self, timeout_seconds: float = 60.0) -> list[FailedEvent]:
        """Waits for every event sent so far; returns those that were not acknowledged."""
        with self._lock:
            pending, self._pending = self._pending, []
        with contextlib.suppress(StoreUnavailable):  # the deliveries say which events it concerned
            self._producer.flush(timeout_seconds)
        return [
            FailedEvent(event, _reason(delivery))
            for event, delivery in pending
            if not delivery.wait(0) or delivery.failure() is not None
        ]

    def close(self, timeout_seconds: float = 60.0) -> None:
        """Flushes and disconnects; raises :class:`DeliveryFailed` if an event was not sent."""
        try:
            failed = self.flush(timeout_seconds)
        finally:
            self._producer.close()
        if failed:
            raise DeliveryFailed(failed)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def validated(event: Event | Mapping | str | bytes, max_ahead_minutes: float) -> Event:
    """The event checked against event schema v1, and its time against this machine's clock:
    at most ``max_ahead_minutes`` ahead, the feature job's limit, so the sender learns at once
    what the job would send to dead letters. Raises :class:`InvalidEvent` naming why not."""
    if isinstance(event, Event):
        valid = event_from_dict(event.to_dict())
    elif isinstance(event, str | bytes):
        valid = parse_event(event)
    else:
        valid = event_from_dict(dict(event))
    ahead_minutes = (valid.timestamp - time.time() * 1000) / 60_000
    if ahead_minutes > max_ahead_minutes:
        raise InvalidEvent(
            f"timestamp {valid.timestamp} is {ahead_minutes:.0f} min ahead of this server's "
            f"clock (at most {max_ahead_minutes:g}): check the sender's clock"
        )
    return valid


def send_event(producer: BusProducer, event: Event) -> Delivery:
    """Queues a validated event on the events topic, keyed by its user."""
    return producer.send(event.user_id.encode(), event.to_json_bytes())


def _reason(delivery: Delivery) -> str:
    if not delivery.wait(0):
        return "no acknowledgement before the flush timed out"
    return str(delivery.failure())
