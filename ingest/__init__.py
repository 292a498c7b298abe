"""Ingestion: getting events into streamrec.

- :class:`~.event_producer.EventProducer`, the client for backends that write to Kafka;
- :mod:`.event_service`, the ``LogEvents`` gRPC service for backends that cannot;
- :mod:`.publisher`, files of events (``streamrec events publish``);
- :mod:`.synthetic`, streams with planted structure for tests and benchmarks.
"""

from streamrec.ingest.event_producer import DeliveryFailed, EventProducer, FailedEvent

__all__ = ["DeliveryFailed", "EventProducer", "FailedEvent"]
