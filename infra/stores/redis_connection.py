"""The one place Redis clients are built, with one timeout policy and one error translation.

Every Redis-backed store gets its client from :func:`redis_client`, so timeouts come from the
``[redis]`` section alone and a process shares one connection pool per server. Inside a store,
:func:`redis_errors` turns whatever redis-py raises into
:class:`~streamrec.infra.errors.StoreUnavailable`, the only storage error stage code sees.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import redis

from streamrec.infra.config import Config, redact_url
from streamrec.infra.errors import StoreUnavailable

_SCAN_COUNT = 10_000
_clients: dict[tuple, redis.Redis] = {}
_lock = threading.Lock()


def redis_client(config: Config) -> redis.Redis:
    """The process's client for the configured server (created on first use)."""
    settings = config.redis
    key = (config.redis_url, settings.socket_timeout_seconds, settings.connect_timeout_seconds)
    with _lock:
        if key not in _clients:
            try:
                _clients[key] = redis.Redis.from_url(
                    config.redis_url,
                    socket_timeout=settings.socket_timeout_seconds,
                    socket_connect_timeout=settings.connect_timeout_seconds,
                    health_check_interval=30,
                )
            except ValueError as exc:
                raise StoreUnavailable(
                    f"redis.url {redact_url(config.redis_url)!r} is not valid: {exc}"
                ) from None
        return _clients[key]


@contextlib.contextmanager
def redis_errors(config: Config, what: str) -> Iterator[None]:
    """Re-raises redis-py and socket errors as StoreUnavailable naming ``what`` failed."""
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise StoreUnavailable(
            f"{what} (Redis at {redact_url(config.redis_url)}) unavailable: {exc}"
        ) from None


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
    except (redis.RedisError, OSError, StoreUnavailable):
        raise StoreUnavailable(
            f"Redis is unreachable at {redact_url(config.redis_url)}; start the local stack "
            "with `streamrec stack up` or set STREAMREC_REDIS_URL"
        ) from None
