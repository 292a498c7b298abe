"""`streamrec topics create` against the real (tansu) broker: every topic, with the configured
partitions and replication, idempotent, and refusals as one line."""

import dataclasses
import json

from kafka import KafkaAdminClient

from streamrec.infra.cli.main import main
from streamrec.infra.core.config import render_toml
from streamrec.infra.storage import open_event_bus
from tests.conftest import free_port


def _topics_create(config, tmp_path, capsys) -> tuple[int, list[dict], str]:
    path = tmp_path / "streamrec.toml"
    path.write_text(render_toml(config))
    code = main(["--config", str(path), "topics", "create"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_every_topic_is_created_once_with_the_configured_layout(config, tmp_path, capsys):
    config = dataclasses.replace(
        config, kafka=dataclasses.replace(config.kafka, partitions=3, replication_factor=2)
    )
    code, first, _ = _topics_create(config, tmp_path, capsys)
    assert code == 0
    expected = {t: 3 for t in config.kafka.topics()} | {config.kafka.imports_topic: 1}
    assert {r["topic"]: r["partitions"] for r in first} == expected
    assert all(r["created"] and r["replication_factor"] == 2 for r in first)
    admin = KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap)
    try:  # as the broker itself describes them
        described = {t["name"]: t for t in admin.describe_topics(list(expected))}
    finally:
        admin.close()
    assert {name: len(t["partitions"]) for name, t in described.items()} == expected
    replicas = {len(p["replica_nodes"]) for t in described.values() for p in t["partitions"]}
    assert replicas == {2}

    code, again, err = _topics_create(config, tmp_path, capsys)
    assert code == 0 and not any(r["created"] for r in again) and err == ""
    bus = open_event_bus(config)
    bus.delete_topic(config.kafka.items_topic)
    assert bus.ensure_topic(config.kafka.items_topic) is True
    assert bus.ensure_topic(config.kafka.items_topic) is False


def test_an_existing_topic_with_fewer_partitions_is_kept_and_named(config, tmp_path, capsys):
    open_event_bus(config).ensure_topic(config.kafka.events_topic, partitions=1)
    code, reported, err = _topics_create(config, tmp_path, capsys)
    events = next(r for r in reported if r["topic"] == config.kafka.events_topic)
    assert code == 0 and (events["created"], events["partitions"]) == (False, 1)
    assert f"topic '{config.kafka.events_topic}' has 1 partitions, fewer than the 4" in err


def test_an_unreachable_broker_is_one_line_and_a_failed_exit(config, tmp_path, capsys):
    dead = dataclasses.replace(
        config,
        kafka=dataclasses.replace(
            config.kafka, bootstrap=f"127.0.0.1:{free_port()}", connect_timeout_ms=500
        ),
    )
    code, reported, err = _topics_create(dead, tmp_path, capsys)
    assert (code, reported) == (1, [])
    assert err.startswith("streamrec: error: Kafka is unreachable at 127.0.0.1:")
    assert err.count("\n") == 1
