"""The one place Redis clients are built, with one timeout, retry and breaker policy and one
error translation.

Every Redis-backed store gets its client from :func:`redis_client`, so timeouts come from the
``[redis]`` section alone and a process shares one connection pool per server. Inside a store,
:func:`redis_errors` turns whatever redis-py raises into
:class:`~streamrec.infra.core.errors.StoreUnavailable`, the only storage error stage code sees.

Retrying is the caller's decision, not the client's: serving falls back at once, the feature
job retries whole batches within an outage budget. So the client retries only a command whose
connection broke (a restarted Redis, a pooled connection gone stale), once and at once.
redis-py's default is ten retries with backoff on timeouts too, which made one call to a hung
Redis last ten socket timeouts. Each client also has a :class:`CircuitBreaker`, consulted by
:func:`redis_errors`: after ``redis.breaker_failures`` unanswered calls in a row, calls fail
at once for ``redis.breaker_open_seconds``, so a hung server costs its callers no more time
than a dead one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from streamrec.infra.core.config import Config, redact_url
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage.adapters.circuit_breaker import CircuitBreaker

_SCAN_COUNT = 10_000
_clients: dict[tuple, tuple[redis.Redis, CircuitBreaker]] = {}
_lock = threading.Lock()
# Errors that say the server did not answer, as opposed to answering with an error.
_UNANSWERED = (redis.ConnectionError, redis.TimeoutError, OSError)


def _client_key(config: Config) -> tuple:
    settings = config.redis
    return (config.redis_url, settings.socket_timeout_seconds, settings.connect_timeout_seconds,
            settings.breaker_failures, settings.breaker_open_seconds)  # fmt: skip


def _connected(config: Config) -> tuple[redis.Redis, CircuitBreaker]:
    key = _client_key(config)
    if (found := _clients.get(key)) is not None:  # no lock on the request path
        return found
    with _lock:
        if key not in _clients:
            settings, url = config.redis, redact_url(config.redis_url)
            try:
                client = redis.Redis.from_url(
                    config.redis_url,
                    socket_timeout=settings.socket_timeout_seconds,
                    socket_connect_timeout=settings.connect_timeout_seconds,
                    health_check_interval=30,
                    retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                )
            except ValueError as exc:
                raise StoreUnavailable(f"redis.url {url!r} is not valid: {exc}") from exc
            breaker = CircuitBreaker(
                f"Redis at {url}", settings.breaker_failures, settings.breaker_open_seconds
            )
            _clients[key] = (client, breaker)
        return _clients[key]


def redis_client(config: Config) -> redis.Redis:
    """The process's client for the configured server and timeouts (created on first use)."""
    return _connected(config)[0]


@contextlib.contextmanager
def redis_errors(config: Config, what: str) -> Iterator[None]:
    """Re-raises redis-py and socket errors as StoreUnavailable naming ``what`` failed, and
    fails at once, without calling, while the client's breaker is open."""
    breaker = _connected(config)[1]
    if (refusal := breaker.refusal()) is not None:
        raise StoreUnavailable(f"{what} ({breaker.name}) unavailable: {refusal}")
    try:
        yield
    except _UNANSWERED as exc:
        breaker.failed(exc)
        raise StoreUnavailable(f"{what} ({breaker.name}) unavailable: {exc}") from exc
    except redis.RedisError as exc:
        breaker.succeeded()  # it answered, with an error
        raise StoreUnavailable(f"{what} ({breaker.name}) failed: {exc}") from exc
    breaker.succeeded()


def delete_namespace(config: Config) -> int:
    """Deletes every key under ``redis.key_prefix`` and returns how many there were.

    Keys are found with SCAN and freed with UNLINK (in the background), so other clients of the
    same server keep being answered meanwhile.
    """
    client = redis_client(config)
    pattern = _glob_escaped(config.redis.key_prefix) + ":*"
    deleted, batch = 0, []
    with redis_errors(config, "deleting the namespace"):
        for key in client.scan_iter(match=pattern, count=_SCAN_COUNT):
            batch.append(key)
            if len(batch) == _SCAN_COUNT:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    return deleted


def _glob_escaped(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def ping(config: Config) -> None:
    """Returns if Redis answers PING; raises StoreUnavailable with how to fix it otherwise."""
    try:
        redis_client(config).ping()
    except (redis.RedisError, OSError, StoreUnavailable) as exc:
        raise StoreUnavailable(
            f"Redis is unreachable at {redact_url(config.redis_url)}; start the local stack "
            "with `streamrec stack up` or set STREAMREC_REDIS_URL"
        ) from exc
