"""Is a service answering? Used to wait for the local stack and to fail fast with a clear error."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from infra.config import Config
from infra.errors import StreamrecError


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kafka_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """True if a Kafka-protocol broker answers a metadata request at ``bootstrap``."""
    first = bootstrap.split(",")[0]
    host, _, port = first.rpartition(":")
    if not port.isdigit() or not port_open(host or "localhost", int(port)):
        return False
    from kafka import KafkaConsumer
    from kafka.errors import KafkaConfigurationError, KafkaError

    millis = max(int(timeout * 1000), 1000)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            request_timeout_ms=millis,
            connections_max_idle_ms=millis + 1000,
        )
    except KafkaConfigurationError:
        raise
    except (KafkaError, OSError):
        return False
    try:
        consumer.topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        consumer.close()


def redis_answers(url: str, timeout: float = 2.0) -> bool:
    """True if a Redis server answers PING at ``url``."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def require_kafka(config: Config) -> None:
    if not kafka_answers(config.kafka_bootstrap):
        raise StreamrecError(
            f"Kafka is unreachable at {config.kafka_bootstrap}; {_hint('KAFKA_BOOTSTRAP')}"
        )


def require_redis(config: Config) -> None:
    if not redis_answers(config.redis_url):
        raise StreamrecError(
            f"Redis is unreachable at {_safe_url(config.redis_url)}; {_hint('REDIS_URL')}"
        )


def _hint(variable: str) -> str:
    return f"start the local stack with `streamrec stack up` or set STREAMREC_{variable}"


def _safe_url(url: str) -> str:
    """The URL without its password, fit for an error message."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
