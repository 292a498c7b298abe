"""The event API (gRPC LogEvents) over real gRPC and the real broker."""

import dataclasses
import json
import signal
import subprocess
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kafka import KafkaConsumer, TopicPartition

from streamrec.infra.contracts import ingest_pb2, ingest_pb2_grpc
from streamrec.infra.core.config import load_config
from streamrec.infra.devstack.stack import LocalStack
from streamrec.ingest.event_service import SERVICE_NAME, EventServer
from tests.conftest import free_port

Status = ingest_pb2.EventStatus


def _event(n, **changes):
    fields = dict(
        event_id=f"e-{n}",
        user_id=f"u-{n % 3}",
        item_id=f"i-{n}",
        event_type="click",
        timestamp=1_767_571_200_000 + n,
    )
    return ingest_pb2.Event(**{**fields, **changes})


def _server_config(config, **ingest):
    return dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, port=0, **ingest))


@pytest.fixture
def server(config):
    running = EventServer(_server_config(config, max_events_per_request=10, max_request_bytes=4096))
    running.start()
    yield config, running
    running.stop(grace=1)


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(server[1].address) as channel:
        yield channel


def _log(channel, events, timeout=10):
    stub = ingest_pb2_grpc.EventServiceStub(channel)
    return stub.LogEvents(ingest_pb2.LogEventsRequest(events=events), timeout=timeout)


def _published(config):
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap, enable_auto_commit=False)
    topic = config.kafka.events_topic
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    values = []
    while batch := consumer.poll(timeout_ms=2000):
        values += [(r.key, json.loads(r.value)) for rows in batch.values() for r in rows]
    consumer.close()
    return values


def test_valid_events_are_published_and_invalid_ones_reported_one_by_one(server, channel):
    config, _ = server
    events = [
        _event(0, context={"device": "web"}),
        _event(1, timestamp=1_767_571_200),  # seconds, not ms
        _event(2),
        _event(3, event_type="like"),
        _event(4, user_id=""),
        _event(5, timestamp=int(time.time() * 1000) + 86_400_000),  # a clock a day ahead
    ]
    reply = _log(channel, events)
    assert [s.code for s in reply.statuses] == [
        Status.ACCEPTED, Status.INVALID, Status.ACCEPTED, Status.INVALID, Status.INVALID,
        Status.INVALID,
    ]  # fmt: skip
    assert reply.accepted == 2
    assert "looks like seconds" in reply.statuses[1].error
    assert "'like' is not one of" in reply.statuses[3].error
    assert "user_id must be a non-empty string" in reply.statuses[4].error
    assert "ahead of this server's clock" in reply.statuses[5].error
    published = _published(config)
    assert sorted(value["event_id"] for _, value in published) == ["e-0", "e-2"]
    assert (b"u-0", {**_event_dict(0), "context": {"device": "web"}}) in published


def _event_dict(n):
    event = _event(n)
    return {f: getattr(event, f) for f in ("event_id", "user_id", "item_id", "event_type")} | {
        "timestamp": event.timestamp
    }


@pytest.mark.parametrize(
    ("events", "code", "detail"),
    [
        ([], grpc.StatusCode.INVALID_ARGUMENT, "send between 1 and 10 events per call, got 0"),
        (
            [_event(n) for n in range(11)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "send between 1 and 10 events per call, got 11",
        ),
        (
            [_event(0, item_id="x" * 5000)],
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "larger than max",
        ),
    ],
)
def test_requests_over_the_limits_are_refused_whole(server, channel, events, code, detail):
    with pytest.raises(grpc.RpcError) as error:
        _log(channel, events)
    assert error.value.code() == code
    assert detail in error.value.details()
    assert _published(server[0]) == []


def test_health_and_reflection_describe_the_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = stub.ServerReflectionInfo(iter([request]), timeout=5)
    names = {s.name for s in answer.list_services_response.service}
    assert "streamrec.ingest.v1.EventService" in names


@pytest.mark.slow
def test_kafka_down_is_unavailable_and_nothing_is_claimed_accepted(tmp_path):
    own = load_config(
        environ={
            "STREAMREC_STACK_STATE_DIR": str(tmp_path),
            "STREAMREC_STACK_KAFKA_PORT": str(free_port()),
            "STREAMREC_STACK_REDIS_PORT": str(free_port()),
            "STREAMREC_KAFKA_REQUEST_TIMEOUT_MS": "1000",
            "STREAMREC_KAFKA_DELIVERY_TIMEOUT_MS": "2000",
        }
    )
    broker = LocalStack(own)
    broker.up()
    running = EventServer(_server_config(own))
    running.start()
    try:
        with grpc.insecure_channel(running.address) as channel:
            assert _log(channel, [_event(0)]).accepted == 1
            broker.down()
            with pytest.raises(grpc.RpcError) as error:
                _log(channel, [_event(1), _event(2, user_id="")], timeout=20)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Kafka acknowledged no event" in error.value.details()
    finally:
        running.stop(grace=0)
        broker.down()


def test_events_serve_runs_as_a_process_and_stops_on_sigterm(config, run_cli):
    port = free_port()
    served = dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, port=port))
    server = run_cli.start(served, "events", "serve", stderr=subprocess.DEVNULL)
    try:
        assert server.stdout.readline().startswith(f"accepting events on 127.0.0.1:{port}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert _log(channel, [_event(7)]).accepted == 1
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert [value["event_id"] for _, value in _published(config)] == ["e-7"]
