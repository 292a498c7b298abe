"""The Kafka event bus against the real (tansu) broker."""

import dataclasses

import pytest

from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage import open_event_bus
from streamrec.infra.storage.adapters import kafka_event_bus
from streamrec.infra.storage.ports.event_bus import TopicNotFound
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from tests.conftest import free_port


def test_end_offsets_count_every_record_even_on_tansu(config):
    events = generate(SyntheticSpec(users=20, items=20, events=2000, seed=6))
    publish(config, events, progress=False)
    assert sum(open_event_bus(config).end_offsets(config.kafka.events_topic).values()) == 2000


def test_missing_topic_is_reported(config):
    with pytest.raises(TopicNotFound, match="'never-created' does not exist"):
        open_event_bus(config).end_offsets("never-created")


def test_read_returns_exactly_the_requested_range_in_offset_order(config):
    bus, topic = open_event_bus(config), config.kafka.events_topic
    bus.ensure_topic(topic, partitions=1)
    assert bus.publish(topic, [(b"k", f"m{n}".encode()) for n in range(50)]) == 50
    records = [record for chunk in bus.read(topic, 0, 10, 20) for record in chunk]
    assert [r.offset for r in records] == list(range(10, 20))
    assert [r.value for r in records] == [f"m{n}".encode() for n in range(10, 20)]
    assert all(r.key == b"k" and r.partition == 0 for r in records)


def test_committed_offsets_are_what_was_committed(config):
    bus, topic = open_event_bus(config), config.kafka.events_topic
    bus.ensure_topic(topic, partitions=2)
    bus.publish(topic, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    assert bus.committed_offsets("nobody", topic) == {}
    bus.commit_offsets("g", topic, {0: 1, 1: 0})
    assert bus.committed_offsets("g", topic) == {0: 1, 1: 0}


def test_an_unreachable_broker_is_store_unavailable_with_the_fix(config):
    dead_kafka = dataclasses.replace(
        config.kafka, bootstrap=f"127.0.0.1:{free_port()}", connect_timeout_ms=500
    )
    dead = dataclasses.replace(config, kafka=dead_kafka)
    bus = open_event_bus(dead)
    fix = "Kafka is unreachable at 127.0.0.1:.* set STREAMREC_KAFKA_BOOTSTRAP"
    with pytest.raises(StoreUnavailable, match=fix):
        bus.ping()
    with pytest.raises(StoreUnavailable, match=fix):
        bus.publish("events", [(None, b"x")])


def test_a_long_range_is_read_whole_in_chunks_and_reading_past_the_end_stalls(config, monkeypatch):
    bus, topic = open_event_bus(config), config.kafka.events_topic
    bus.ensure_topic(topic, partitions=1)
    bus.publish(topic, [(None, f"m{n}".encode()) for n in range(10_000)])
    chunks = list(bus.read(topic, 0, 5, 9_995))
    assert len(chunks) > 1
    assert [r.offset for chunk in chunks for r in chunk] == list(range(5, 9_995))
    monkeypatch.setattr(kafka_event_bus, "_STALL_SECONDS", 1.0)
    with pytest.raises(StoreUnavailable, match=r"no records from .*\[0\] at offset 10000"):
        list(bus.read(topic, 0, 9_990, 10_001))


@pytest.mark.slow
def test_reading_from_an_unreachable_broker_is_store_unavailable_with_the_fix(config):
    dead_kafka = dataclasses.replace(config.kafka, bootstrap=f"127.0.0.1:{free_port()}")
    bus = open_event_bus(dataclasses.replace(config, kafka=dead_kafka))
    fix = r"Kafka is unreachable at .* STREAMREC_KAFKA_BOOTSTRAP"
    with pytest.raises(StoreUnavailable, match=fix):
        list(bus.read("events", 0, 0, 10))


def test_a_deleted_topic_is_gone_and_deleting_it_again_is_no_error(config):
    bus, topic = open_event_bus(config), config.kafka.events_topic
    bus.ensure_topic(topic, partitions=1)
    bus.publish(topic, [(b"k", b"v")])
    bus.delete_topic(topic)
    with pytest.raises(TopicNotFound):
        bus.end_offsets(topic)
    bus.delete_topic(topic)
