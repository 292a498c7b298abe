"""The event bus port: the partitioned, replayable log that events travel on (Kafka).

Offsets are per partition; ``end_offsets`` gives the next offset to be written (the high
watermark), and a reader asks for exact ranges ``[start, end)`` so that a replay reads the
same records again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple, Protocol

from streamrec.infra.core.errors import StoreUnavailable


class BusRecord(NamedTuple):
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: int  # broker or producer time, ms since epoch


class TopicLayout(NamedTuple):
    partitions: int
    replication_factor: int


class TopicNotFound(StoreUnavailable):
    """The topic does not exist (yet): nothing was ever published to it."""


class Delivery(Protocol):
    """The outcome of one sent message, known once the broker has answered for it.

    Lighter than a ``concurrent.futures.Future``, whose lock and condition cost as much as
    sending the message.
    """

    def wait(self, timeout_seconds: float | None = None) -> bool:
        """Waits for the outcome (at most ``timeout_seconds``); True once it is known."""

    def failure(self) -> StoreUnavailable | None:
        """Why the message was not acknowledged; None if it was, or if that is not known yet."""


class BusProducer(Protocol):
    """Sends messages to one topic in batches, keeping each key's messages in order."""

    def send(self, key: bytes | None, value: bytes) -> Delivery:
        """Queues a message; its delivery says when the broker acknowledged it, or why not."""

    def flush(self, timeout_seconds: float) -> None:
        """Waits until every queued message is acknowledged or has failed."""

    def close(self) -> None:
        """Flushes, then releases the connection."""


class EventBus(Protocol):
    """Raises :class:`~streamrec.infra.core.errors.StoreUnavailable` when the bus cannot answer."""

    def ping(self) -> None:
        """Returns if a broker answers; raises StoreUnavailable naming how to fix it if not."""

    def ensure_topic(self, topic: str, partitions: int | None = None) -> bool:
        """Creates the topic unless it exists (``partitions`` defaults to the configured count,
        replication as configured); True if this call created it."""

    def topic_layout(self, topic: str) -> TopicLayout:
        """How the topic is laid out on the cluster; raises :class:`TopicNotFound`."""

    def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset to be written, per partition; raises :class:`TopicNotFound`."""

    def read(self, topic: str, partition: int, start: int, end: int) -> Iterator[list[BusRecord]]:
        """The records of one partition in ``[start, end)``, in offset order, in chunks."""

    def producer(self, topic: str) -> BusProducer:
        """A producer for ``topic``, for callers that need each message's outcome."""

    def publish(self, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
        """Sends ``(key, value)`` messages and returns once every one is acknowledged.

        Returns how many were sent. Messages with the same key keep their order. If any is not
        acknowledged, raises StoreUnavailable saying how many were.
        """

    def commit_offsets(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Records ``offsets`` (next offset per partition) as the consumer group's position."""

    def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        """The consumer group's committed position per partition (absent: never committed)."""

    def delete_topic(self, topic: str) -> None:
        """Deletes the topic and its records; a topic that does not exist is no error."""
