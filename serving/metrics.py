"""Prometheus metrics of the API server, served over HTTP on ``serving.metrics_port``.

The cache hit ratio is ``answers{source="cache"}`` over all answers of Recommend; fallbacks are
``answers{source="fallback"}``, with their reasons in ``fallbacks``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamrec.infra.core.metrics_endpoint import serve_metrics

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._series: dict[tuple, tuple] = {}
        self.latency = Histogram(
            "streamrec_serving_request_seconds",
            "Time to answer a request, by RPC and the model version that answered",
            ["rpc", "model_version"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "streamrec_serving_requests",
            "Requests by RPC and gRPC status code",
            ["rpc", "code"],
            registry=self.registry,
        )
        self.answers = Counter(
            "streamrec_serving_answers",
            "Answers by RPC and source: model, cache or fallback",
            ["rpc", "source"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "streamrec_serving_fallbacks",
            "Fallback answers by reason: no_history or online_store_unavailable",
            ["reason"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "streamrec_serving_model_version",
            "The model version serving",
            registry=self.registry,
            multiprocess_mode="liveall",  # one per server process, with its pid
        )
        self.index_recall = Gauge(
            "streamrec_serving_index_recall_at_100",
            "Recall@100 of the serving item index against exact search, measured at export "
            "(1 for an exact index)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model_swaps = Counter(
            "streamrec_serving_model_swaps",
            "New current versions swapped in, or refused because they failed to load or warm up",
            ["outcome"],
            registry=self.registry,
        )

    def serve(self, port: int) -> None:
        serve_metrics(self.registry, port, "API server", "STREAMREC_SERVING_METRICS_PORT")

    def record_request(
        self, rpc: str, code: str, seconds: float, version: int, source: str, reason: str
    ) -> None:
        """One finished request; ``source`` is empty when it got no answer."""
        key = (rpc, code, version, source, reason)
        if (series := self._series.get(key)) is None:
            series = self._series[key] = self._series_of(*key)
        requests, latency, answers, fallbacks = series
        requests.inc()
        latency.observe(seconds)
        if answers is not None:
            answers.inc()
        if fallbacks is not None:
            fallbacks.inc()

    def _series_of(self, rpc: str, code: str, version: int, source: str, reason: str) -> tuple:
        """The labelled series a request of this kind counts in. Looked up once per kind:
        ``labels()`` costs a few microseconds, and a cached hit takes about 150 in all."""
        return (
            self.requests.labels(rpc, code),
            self.latency.labels(rpc, str(version)),
            self.answers.labels(rpc, source) if source else None,
            self.fallbacks.labels(reason) if reason else None,
        )

    def record_model(self, version: int, index_recall: float) -> None:
        self.model_version.set(version)
        self.index_recall.set(index_recall)
