"""The event API server: gRPC ``LogEvents`` (``streamrec.ingest.v1``) in front of Kafka.

A separate process role from the ranking service, for two reasons: it scales with the event
rate rather than the request rate, and an outage of Kafka must never take recommendations
down with it (nor a slow model the event intake).

Each call validates every event, queues the valid ones on the events topic and answers once
Kafka has acknowledged them (or the deadline passed), with one status per event. An event
reported ACCEPTED is durable in Kafka; anything else the caller still holds and may retry.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from streamrec.infra.contracts import ingest_pb2, ingest_pb2_grpc
from streamrec.infra.contracts.events import InvalidEvent
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_event_bus
from streamrec.infra.storage.ports.event_bus import BusProducer, Delivery
from streamrec.ingest.event_producer import send_event, validated

log = logging.getLogger(__name__)
SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["EventService"].full_name
_Status = ingest_pb2.EventStatus


class EventServicer(ingest_pb2_grpc.EventServiceServicer):
    def __init__(
        self, producer: BusProducer, max_events: int, ack_timeout: float, max_ahead_minutes: float
    ) -> None:
        self.producer = producer
        self.max_events = max_events
        self.ack_timeout = ack_timeout
        self.max_ahead_minutes = max_ahead_minutes

    def LogEvents(
        self, request: ingest_pb2.LogEventsRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.LogEventsResponse:
        if not 1 <= len(request.events) <= self.max_events:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"send between 1 and {self.max_events} events per call, got {len(request.events)}",
            )
        statuses: list[_Status | None] = [None] * len(request.events)
        deliveries: dict[int, Delivery] = {}
        for index, event in enumerate(request.events):
            try:
                valid = validated(_as_dict(event), self.max_ahead_minutes)
                deliveries[index] = send_event(self.producer, valid)
            except InvalidEvent as exc:
                statuses[index] = _Status(code=_Status.INVALID, error=str(exc))
        deadline = time.monotonic() + self._wait_seconds(context)
        for index, delivery in deliveries.items():
            delivery.wait(max(0.0, deadline - time.monotonic()))
            statuses[index] = _delivery_status(delivery)
        accepted = sum(status.code == _Status.ACCEPTED for status in statuses)
        if deliveries and not accepted:
            first_error = statuses[next(iter(deliveries))].error
            context.abort(
                grpc.StatusCode.UNAVAILABLE, f"Kafka acknowledged no event: {first_error}"
            )
        return ingest_pb2.LogEventsResponse(statuses=statuses, accepted=accepted)

    def _wait_seconds(self, context: grpc.ServicerContext) -> float:
        """Until just before the caller's deadline, so that the answer still reaches it."""
        remaining = context.time_remaining()
        if remaining is None:
            return self.ack_timeout
        return max(0.0, min(self.ack_timeout, remaining - 0.05))


def _as_dict(event: ingest_pb2.Event) -> dict:
    record = {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "event_type": event.event_type,
        "timestamp": event.timestamp,
    }
    if event.context:
        record["context"] = dict(event.context)
    return record


def _delivery_status(delivery: Delivery) -> _Status:
    if not delivery.wait(0):
        return _Status(code=_Status.UNAVAILABLE, error="Kafka did not acknowledge it in time")
    if delivery.failure() is not None:
        return _Status(code=_Status.UNAVAILABLE, error=str(delivery.failure()))
    return _Status(code=_Status.ACCEPTED)


class EventServer:
    """A started-on-demand gRPC server: EventService, health and reflection (port 0 picks one)."""

    def __init__(self, config: Config) -> None:
        settings = config.ingest
        bus = open_event_bus(config)
        bus.ensure_topic(config.kafka.events_topic)
        self.producer = bus.producer(config.kafka.events_topic)
        self.servicer = EventServicer(
            self.producer,
            settings.max_events_per_request,
            settings.ack_timeout_seconds,
            config.features.max_event_time_ahead_minutes,
        )
        self.health = health.HealthServicer()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers),
            options=[("grpc.max_receive_message_length", settings.max_request_bytes)],
        )
        ingest_pb2_grpc.add_EventServiceServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        address = f"{settings.host}:{settings.port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise StreamrecError(
                f"cannot listen on {address}: is the port taken? set STREAMREC_INGEST_PORT"
            )
        self.address = f"{settings.host}:{self.port}"

    def start(self) -> None:
        self.server.start()
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.producer.close()


def serve_forever(config: Config, say: Callable[[str], object] = log.info) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight calls and flushes Kafka. ``say``
    gets the line that it accepts events, once it does, and "stopped" at the end."""
    open_event_bus(config).ping()
    server = EventServer(config)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    server.start()
    topic = config.kafka.events_topic
    say(f"accepting events on {server.address} for topic {topic!r}")
    stopping.wait()
    server.stop()
    say("stopped")
