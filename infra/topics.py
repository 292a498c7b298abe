"""Kafka topic administration shared by the roles that own topics."""

from __future__ import annotations

from infra.config import Config
from infra.errors import StreamrecError


def ensure_topic(config: Config, topic: str, partitions: int | None = None) -> None:
    """Creates ``topic`` with the configured partition count unless it exists already."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=config.kafka_bootstrap, request_timeout_ms=10_000
        )
    except KafkaError as exc:
        raise StreamrecError(f"Kafka is unreachable at {config.kafka_bootstrap}: {exc}") from None
    try:
        if topic not in admin.list_topics():
            admin.create_topics(
                [NewTopic(topic, partitions or config.kafka.partitions, replication_factor=1)]
            )
    except TopicAlreadyExistsError:
        return  # another process created it between our check and our request
    except KafkaError as exc:
        raise StreamrecError(f"cannot create topic {topic!r}: {exc}") from None
    finally:
        admin.close()
