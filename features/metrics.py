"""Prometheus metrics of the feature worker, served over HTTP on ``features.metrics_port``.

Tasks run in Spark's Python workers, other processes, so they report their counts in their
outcome rows and the driver records them here after each batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamrec.infra.core.metrics_endpoint import serve_metrics

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class FeatureJobMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "streamrec_features_events",
            "Events read from Kafka, by what became of them",
            ["outcome"],  # accepted, rejected (dead letter), late, duplicate
            registry=self.registry,
        )
        self.examples = Counter(
            "streamrec_features_examples", "Training examples committed", registry=self.registry
        )
        self.batch_seconds = Histogram(
            "streamrec_features_batch_seconds",
            "Duration of a micro-batch",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.phase_seconds = Histogram(
            "streamrec_features_batch_phase_seconds",
            "Duration of each step of a micro-batch",
            ["phase"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lag = Gauge(
            "streamrec_features_lag_events",
            "Events published but not yet processed, per partition",
            ["partition"],
            registry=self.registry,
        )
        self.event_to_redis = Histogram(
            "streamrec_features_event_to_redis_seconds",
            "From an event's publication to its user's history in Redis (a sample per batch)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def serve(self, port: int) -> None:
        serve_metrics(self.registry, port, "feature worker", "STREAMREC_FEATURES_METRICS_PORT")

    def record_batch(
        self,
        counts: Mapping[str, int],
        examples: int,
        seconds: float,
        phases: Mapping[str, float],
        latencies: Sequence[float],
    ) -> None:
        for outcome, n in counts.items():
            self.events.labels(outcome).inc(n)
        self.examples.inc(examples)
        self.batch_seconds.observe(seconds)
        for phase, value in phases.items():
            self.phase_seconds.labels(phase).observe(value)
        for value in latencies:
            self.event_to_redis.observe(value)

    def record_lag(self, published: Mapping[int, int], processed: Mapping[int, int]) -> None:
        for partition, end in published.items():
            self.lag.labels(str(partition)).set(max(0, end - processed.get(partition, 0)))
