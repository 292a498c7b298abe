"""The producer client for backends, against the real (tansu) broker."""

import dataclasses
import json
import re
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from streamrec.infra.contracts.events import Event, InvalidEvent
from streamrec.infra.core.config import load_config
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.devstack.stack import LocalStack
from streamrec.ingest import DeliveryFailed, EventProducer
from tests.conftest import free_port


def _records(config):
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap, enable_auto_commit=False)
    topic = config.kafka.events_topic
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    records = []
    while batch := consumer.poll(timeout_ms=2000):
        records += [r for rows in batch.values() for r in rows]
    consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _event(n, user="u-1"):
    return {
        "event_id": f"e-{n}",
        "user_id": user,
        "item_id": f"i-{n}",
        "event_type": "click",
        "timestamp": 1_767_571_200_000 + n,
    }


def test_events_are_validated_keyed_by_user_and_acknowledged_in_order(config):
    with EventProducer(config) as producer:
        deliveries = [producer.send(_event(n)) for n in range(50)]
        deliveries.append(producer.send(json.dumps(_event(50, user="u-2"))))
        deliveries.append(producer.send(Event("e-51", "u-2", "i-1", "view", 1_767_571_200_000)))
        assert producer.flush() == []
    assert all(d.wait(0) and d.failure() is None for d in deliveries)
    records = _records(config)
    assert len(records) == 52
    assert {r.key for r in records} == {b"u-1", b"u-2"}
    ids = [json.loads(r.value)["event_id"] for r in records if r.key == b"u-1"]
    assert ids == [f"e-{n}" for n in range(50)]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({**_event(1), "timestamp": 1_767_571_200}, "looks like seconds"),
        ({**_event(1), "colour": "red"}, "unknown field(s): colour"),
        (Event("e-1", "", "i", "view", 1_767_571_200_000), "user_id must be a non-empty"),
        ("{not json", "not valid JSON"),
        (
            {**_event(1), "timestamp": int(time.time() * 1000) + 3 * 3_600_000},
            "min ahead of this server's clock (at most 60): check the sender's clock",
        ),
    ],
)
def test_an_invalid_event_is_refused_before_anything_is_sent(config, event, reason):
    with EventProducer(config) as producer, pytest.raises(InvalidEvent, match=re.escape(reason)):
        producer.send(event)
    assert _records(config) == []


def test_idempotent_sends_where_the_broker_supports_them(config):
    with EventProducer(config) as producer:
        kafka_producer = producer._producer._producer  # what the adapter configured
        assert kafka_producer.config["enable_idempotence"] is True
        assert kafka_producer.config["acks"] == -1  # all


@pytest.mark.slow
def test_events_kafka_never_acknowledged_are_reported_not_swallowed(tmp_path):
    own = load_config(
        environ={
            "STREAMREC_STACK_STATE_DIR": str(tmp_path),
            "STREAMREC_STACK_KAFKA_PORT": str(free_port()),
            "STREAMREC_STACK_REDIS_PORT": str(free_port()),
        }
    )
    kafka = dataclasses.replace(own.kafka, request_timeout_ms=1500, delivery_timeout_ms=3000)
    own = dataclasses.replace(own, kafka=kafka)
    broker = LocalStack(own)
    broker.up()
    producer = EventProducer(own)
    first = producer.send(_event(0))
    assert first.wait(10) and first.failure() is None
    broker.down()  # Kafka goes away with events in flight
    deliveries = [producer.send(_event(n)) for n in range(1, 4)]
    failed = producer.flush(timeout_seconds=20)
    assert [f.event.event_id for f in failed] == ["e-1", "e-2", "e-3"]
    assert all(d.wait(0) and isinstance(d.failure(), StoreUnavailable) for d in deliveries)
    producer.send(_event(4))
    with pytest.raises(DeliveryFailed, match=r"1 event\(s\) were not acknowledged.*'e-4'"):
        producer.close(timeout_seconds=20)


def test_an_unreachable_broker_fails_at_once(config):
    dead = dataclasses.replace(
        config,
        kafka=dataclasses.replace(
            config.kafka, bootstrap=f"127.0.0.1:{free_port()}", connect_timeout_ms=500
        ),
    )
    with pytest.raises(StoreUnavailable, match="Kafka is unreachable"):
        EventProducer(dead)
