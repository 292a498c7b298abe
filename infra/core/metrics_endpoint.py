"""The HTTP endpoint that serves a role's Prometheus metrics (feature worker, API server)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from streamrec.infra.core.errors import StreamrecError


def serve_metrics(registry: CollectorRegistry, port: int, role: str, setting: str) -> None:
    """Serves ``/metrics`` on ``port`` in a daemon thread; a taken port is a one-line error
    naming ``setting``, the environment variable that moves it."""
    try:
        start_http_server(port, addr="0.0.0.0", registry=registry)
    except OSError as exc:
        raise StreamrecError(
            f"cannot serve {role} metrics on port {port} ({exc.strerror}); "
            f"set {setting}, or 0 to turn them off"
        ) from exc
