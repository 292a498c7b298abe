"""The event bus on Kafka (kafka-python): the one place Kafka clients are built.

Producers, consumers and admin clients all take their address, security and timeouts from the
``[kafka]`` section through :func:`client_settings`, so pointing streamrec at a secured cluster
(SASL with PLAIN, SCRAM or OAUTHBEARER, TLS with or without a client certificate) is a
configuration change. Every kafka-python error leaves this module as
:class:`~streamrec.infra.core.errors.StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from kafka.future import Future as KafkaFuture
from kafka.structs import OffsetAndMetadata

from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage.adapters.kafka_oauth import shared_tokens
from streamrec.infra.storage.ports.event_bus import BusRecord, TopicLayout, TopicNotFound

# acks=all, retried with backoff until delivery_timeout_ms, in order per key. kafka-python
# turns idempotence on where the broker supports it (0.11 and later), so a retried send is not
# written twice; one request in flight keeps a key's messages in order even where it does not.
# Batches of up to 256 KiB, held at most 5 ms, gave 1.6x the defaults' throughput here.
_PRODUCER = {
    "acks": "all",
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "retry_backoff_ms": 100,
    "max_in_flight_requests_per_connection": 1,
}
_CHUNK = 4096
_IDLE_CONSUMERS: dict[str, list[KafkaConsumer]] = {}
_POOL_LOCK = threading.Lock()
_STALL_SECONDS = 60.0
_FLUSH_SECONDS = 60.0


def client_settings(config: Config) -> dict[str, Any]:
    """What every kafka-python client is built with: address, security and timeouts."""
    kafka = config.kafka
    settings: dict[str, Any] = {
        "bootstrap_servers": config.kafka_bootstrap.split(","),
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
        "bootstrap_timeout_ms": kafka.connect_timeout_ms,
    }
    if kafka.sasl_mechanism:
        settings["sasl_mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_mechanism == "OAUTHBEARER":
        settings["sasl_oauth_token_provider"] = shared_tokens(
            kafka.sasl_oauth_token_url, kafka.sasl_oauth_client_id,
            kafka.sasl_oauth_client_secret, kafka.sasl_oauth_scope,
        )  # fmt: skip
    elif kafka.sasl_mechanism:
        settings["sasl_plain_username"] = kafka.sasl_username
        settings["sasl_plain_password"] = kafka.sasl_password
    tls = {"ssl_cafile": kafka.ssl_cafile, "ssl_certfile": kafka.ssl_certfile,
           "ssl_keyfile": kafka.ssl_keyfile, "ssl_password": kafka.ssl_password}  # fmt: skip
    return settings | {name: value for name, value in tls.items() if value}


def topic_settings(config: Config, topic: str) -> dict[str, str]:
    """The topic-level settings streamrec creates ``topic`` with. The item catalog and the
    import checkpoints are read for their newest record per key, so they are compacted, not
    expired; the event topics keep the broker's retention (README, "Pointing streamrec at an
    existing Kafka, Redis and Spark cluster")."""
    kafka = config.kafka
    settings = {}
    if kafka.min_insync_replicas:
        settings["min.insync.replicas"] = str(kafka.min_insync_replicas)
    if topic in (kafka.items_topic, kafka.imports_topic):
        settings["cleanup.policy"] = "compact"
    return settings


class KafkaEventBus:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._settings = client_settings(config)

    def ping(self) -> None:
        if not _any_broker_listening(self._settings["bootstrap_servers"]):
            raise self._unreachable("no broker accepts connections")
        with (
            self._kafka_errors("asking for metadata"),
            self._consumer(request_timeout_ms=3000, connections_max_idle_ms=4000) as consumer,
        ):
            consumer.topics()

    def ensure_topic(self, topic: str, partitions: int | None = None) -> bool:
        kafka = self._config.kafka
        new_topic = NewTopic(
            topic, partitions or kafka.partitions, kafka.replication_factor,
            topic_configs=topic_settings(self._config, topic),
        )  # fmt: skip
        with self._kafka_errors(f"creating topic {topic!r}"):
            admin = self._connected(KafkaAdminClient, f"creating topic {topic!r}")
            try:
                if topic in admin.list_topics():
                    return False
                admin.create_topics([new_topic])
                return True
            except TopicAlreadyExistsError:
                return False  # another process created it between our check and our request
            finally:
                admin.close()

    def topic_layout(self, topic: str) -> TopicLayout:
        with self._kafka_errors(f"describing topic {topic!r}"):
            admin = self._connected(KafkaAdminClient, f"describing topic {topic!r}")
            try:
                (described,) = admin.describe_topics([topic])
            except UnknownTopicOrPartitionError as exc:
                raise self._missing(topic) from exc
            finally:
                admin.close()
        partitions = described.get("partitions") or []
        if described.get("error_code") or not partitions:
            raise self._missing(topic)
        replicas = max(len(partition["replica_nodes"]) for partition in partitions)
        return TopicLayout(len(partitions), replicas)

    def _missing(self, topic: str) -> TopicNotFound:
        return TopicNotFound(f"topic {topic!r} does not exist at {self._config.kafka_bootstrap}")

    def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark per partition.

        Tansu answers ListOffsets(latest) with the base offset of the last record batch plus
        one, not the high watermark, so the listed value can be short by up to a whole producer
        batch. A fetch response carries the true high watermark: fetch from just before the
        listed end and read it there. Against Apache Kafka the two agree and this costs one
        small fetch per partition.
        """
        with self._kafka_errors(f"reading the end offsets of {topic!r}"), self._consumer() as c:
            partitions = c.partitions_for_topic(topic)
            if not partitions:
                raise self._missing(topic)
            listed = c.end_offsets([TopicPartition(topic, p) for p in partitions])
            return {tp.partition: _high_watermark(c, tp, end) for tp, end in listed.items()}

    def read(self, topic: str, partition: int, start: int, end: int) -> Iterator[list[BusRecord]]:
        tp = TopicPartition(topic, partition)
        where = f"reading {topic}[{partition}] from offset {start}"
        with self._kafka_errors(where), self._consumer(max_poll_records=_CHUNK) as consumer:
            consumer.assign([tp])
            consumer.seek(tp, start)
            last_progress = time.monotonic()
            while consumer.position(tp) < end:
                records = consumer.poll(timeout_ms=500).get(tp, [])
                if records:
                    last_progress = time.monotonic()
                elif time.monotonic() - last_progress > _STALL_SECONDS:
                    raise StoreUnavailable(
                        f"no records from {topic}[{partition}] at offset {consumer.position(tp)} "
                        f"for {_STALL_SECONDS:.0f}s (expected up to {end})"
                    )
                chunk = [
                    BusRecord(r.key, r.value, partition, r.offset, r.timestamp)
                    for r in records
                    if r.offset < end
                ]
                if chunk:
                    yield chunk

    def producer(self, topic: str) -> KafkaBusProducer:
        settings = {**_PRODUCER, "delivery_timeout_ms": self._config.kafka.delivery_timeout_ms}
        return KafkaBusProducer(
            self._connected(KafkaProducer, "starting a producer", **settings), topic
        )

    def publish(self, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
        deliveries: list[_KafkaDelivery] = []
        producer = None  # created on the first message: most dead-letter batches are empty
        try:
            for key, value in messages:
                producer = producer or self.producer(topic)
                deliveries.append(producer.send(key, value))
        finally:
            if producer is not None:
                producer.close()
        failures = [d.failure() for d in deliveries if not d.wait(0) or d.failure() is not None]
        if failures:
            sent = len(deliveries)
            raise StoreUnavailable(
                f"{len(failures)} of {sent} messages to {topic!r} were not acknowledged by Kafka "
                f"({failures[0]}); {sent - len(failures)} were published"
            )
        return len(deliveries)

    def commit_offsets(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        commit = {
            TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()
        }
        with (
            self._kafka_errors(f"committing offsets of group {group!r}"),
            self._consumer(group_id=group) as consumer,
        ):
            consumer.commit(commit)

    def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        with (
            self._kafka_errors(f"reading offsets of group {group!r}"),
            self._consumer(group_id=group) as consumer,
        ):
            partitions = consumer.partitions_for_topic(topic) or set()
            found = {p: consumer.committed(TopicPartition(topic, p)) for p in partitions}
        return {p: offset for p, offset in found.items() if offset is not None}

    def delete_topic(self, topic: str) -> None:
        with self._kafka_errors(f"deleting topic {topic!r}"):
            admin = self._connected(KafkaAdminClient, f"deleting topic {topic!r}")
            try:
                if topic in admin.list_topics():
                    admin.delete_topics([topic])
            except UnknownTopicOrPartitionError:
                return  # deleted by another process between our check and our request
            finally:
                admin.close()

    @contextlib.contextmanager
    def _consumer(self, **overrides: Any) -> Iterator[KafkaConsumer]:
        """A consumer from this process's pool, returned after a clean use.

        The feature job plans every micro-batch with ``end_offsets`` and reads each range with
        ``read``; connecting a new consumer for each took longer than the work itself.
        """
        key = repr(sorted({**self._settings, **overrides}.items()))
        with _POOL_LOCK:
            idle = _IDLE_CONSUMERS.setdefault(key, [])
            consumer = idle.pop() if idle else None
        if consumer is None:
            settings = {"enable_auto_commit": False, **overrides}
            consumer = self._connected(KafkaConsumer, "starting a consumer", **settings)
        try:
            yield consumer
        except BaseException:
            consumer.close()  # its state is unknown: never reuse it
            raise
        consumer.unsubscribe()
        with _POOL_LOCK:
            _IDLE_CONSUMERS[key].append(consumer)

    def _connected(self, client: type, doing: str, **overrides: Any) -> Any:
        """A new kafka-python client; failing to reach any broker means Kafka is unreachable."""
        try:
            return client(**{**self._settings, **overrides})
        except KafkaTimeoutError as exc:
            raise self._unreachable(doing) from exc

    def _unreachable(self, doing: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"Kafka is unreachable at {self._config.kafka_bootstrap} ({doing}); start the local "
            "stack with `streamrec stack up` or set STREAMREC_KAFKA_BOOTSTRAP"
        )

    @contextlib.contextmanager
    def _kafka_errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (KafkaError, OSError) as exc:
            raise StoreUnavailable(
                f"Kafka at {self._config.kafka_bootstrap} failed {doing}: {exc!r}"
            ) from exc


class KafkaBusProducer:
    """A kafka-python producer for one topic, reporting failures as StoreUnavailable."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    def send(self, key: bytes | None, value: bytes) -> _KafkaDelivery:
        try:
            return _KafkaDelivery(
                self._producer.send(self._topic, key=key, value=value), self._topic
            )
        except (KafkaError, OSError) as exc:
            return _KafkaDelivery(_failed(exc), self._topic)

    def flush(self, timeout_seconds: float) -> None:
        try:
            self._producer.flush(timeout=timeout_seconds)
        except (KafkaError, OSError) as exc:
            raise StoreUnavailable(
                f"Kafka did not take every message to {self._topic!r}: {exc!r}"
            ) from exc

    def close(self) -> None:
        try:
            self.flush(_FLUSH_SECONDS)
        finally:
            self._producer.close(timeout=10)


class _KafkaDelivery:
    __slots__ = ("_future", "_topic")

    def __init__(self, future: KafkaFuture, topic: str) -> None:
        self._future = future
        self._topic = topic

    def wait(self, timeout_seconds: float | None = None) -> bool:
        if not self._future.is_done:
            with contextlib.suppress(KafkaError):  # a failure is read from the future below
                self._future.get(timeout=timeout_seconds)
        return self._future.is_done

    def failure(self) -> StoreUnavailable | None:
        if not self._future.is_done or self._future.exception is None:
            return None
        return StoreUnavailable(
            f"Kafka did not acknowledge a message to {self._topic!r}: {self._future.exception!r}"
        )


def _failed(exc: BaseException) -> KafkaFuture:
    future = KafkaFuture()
    future.failure(exc)
    return future


def _high_watermark(consumer: KafkaConsumer, tp: TopicPartition, listed_end: int) -> int:
    if listed_end <= 0:
        return listed_end
    consumer.assign([tp])
    consumer.seek(tp, listed_end - 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=200, max_records=1, update_offsets=False)
        highwater = consumer.highwater(tp)
        if highwater is not None:
            return max(highwater, listed_end)
    return listed_end


def _any_broker_listening(addresses: list[str]) -> bool:
    """A quick TCP check, because a client waits ``connect_timeout_ms`` before giving up."""
    for address in addresses:
        host, _, port = address.strip().rpartition(":")
        with contextlib.suppress(OSError, ValueError):
            socket.create_connection((host or "localhost", int(port)), timeout=0.5).close()
            return True
    return False
