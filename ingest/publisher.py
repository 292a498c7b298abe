"""Sends events to the ``events`` topic: JSON values keyed by ``user_id``.

Keying by user keeps each user's events in one partition, in order, which is what the
feature job's per-user history relies on.
"""

from __future__ import annotations

from collections.abc import Iterable

from tqdm import tqdm

from infra.config import Config
from infra.errors import StreamrecError
from infra.topics import ensure_topic
from ingest.schema import Event


def publish(
    config: Config, events: Iterable[Event], total: int | None = None, progress: bool = True
) -> int:
    """Publishes events and waits until the broker has acknowledged every one of them.

    Returns the number published. If any send fails, raises after flushing the rest, saying how
    many were acknowledged. A retry may send some events twice; they keep their ``event_id``.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    ensure_topic(config, config.kafka.events_topic)
    producer = KafkaProducer(
        bootstrap_servers=config.kafka_bootstrap,
        acks="all",
        linger_ms=20,
        retries=5,
        max_in_flight_requests_per_connection=1,  # retries must not reorder a user's events
        request_timeout_ms=15_000,
    )
    failures: list[BaseException] = []
    sent = 0
    bar = tqdm(total=total, unit="ev", desc="publish", disable=not progress, leave=False)
    try:
        for event in events:
            future = producer.send(
                config.kafka.events_topic,
                key=event.user_id.encode(),
                value=event.to_json().encode(),
            )
            future.add_errback(failures.append)
            sent += 1
            bar.update()
        producer.flush(timeout=60)
    except KafkaError as exc:
        failures.append(exc)
    finally:
        bar.close()
        producer.close(timeout=10)
    if failures:
        acked = sent - len(failures)
        raise StreamrecError(
            f"{len(failures)} of {sent} events were not acknowledged by Kafka ({failures[0]}); "
            f"{acked} were published"
        )
    return sent
