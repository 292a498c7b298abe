import dataclasses
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, TopicPartition

from streamrec.infra.contracts.events import parse_event
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from tests.conftest import free_port


def _consume_all(config):
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap, enable_auto_commit=False)
    partitions = [
        TopicPartition(config.kafka.events_topic, p)
        for p in consumer.partitions_for_topic(config.kafka.events_topic)
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    records = []
    while batch := consumer.poll(timeout_ms=2000):
        for rows in batch.values():
            records.extend(rows)
    consumer.close()
    return partitions, records


def test_published_events_arrive_keyed_by_user_in_per_user_order(config):
    events = generate(SyntheticSpec(users=30, items=50, events=3000, seed=5))
    assert publish(config, events, total=len(events), progress=False) == 3000
    partitions, records = _consume_all(config)
    assert len(partitions) == config.kafka.partitions
    assert len(records) == 3000
    partition_of_user: dict[str, set[int]] = defaultdict(set)
    per_user: dict[str, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = parse_event(record.value)
        assert record.key == event.user_id.encode()
        partition_of_user[event.user_id].add(record.partition)
        per_user[event.user_id].append(event.timestamp)
    assert all(len(p) == 1 for p in partition_of_user.values())
    assert all(ts == sorted(ts) for ts in per_user.values())


def test_publishing_to_an_unreachable_broker_fails_clearly(config):
    dead_kafka = dataclasses.replace(
        config.kafka, bootstrap=f"127.0.0.1:{free_port()}", connect_timeout_ms=500
    )
    dead = dataclasses.replace(config, kafka=dead_kafka)
    events = generate(SyntheticSpec(users=1, items=2, events=3, seed=1))
    with pytest.raises(StoreUnavailable, match="Kafka is unreachable"):
        publish(dead, events, progress=False)
