"""The one place Redis clients are built, with one timeout, retry and breaker policy and one
error translation.

Every Redis-backed store gets its client from :func:`redis_client` for its
:class:`RedisEndpoint`, so timeouts come from the ``[redis]`` section alone and a process shares
one connection pool per deployment. Behind Sentinels, the client asks them for the master on
every new connection, and a connection to a demoted master breaks: after a failover, the next
call that reconnects reaches the new master. In a cluster, the client knows which node holds
each slot and sends each command there (the stores' keys are laid out for it:
:mod:`.redis_keys`). Inside a store,
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
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from streamrec.infra.core.config import REDIS_STORES, Config, redact_url
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage.adapters.circuit_breaker import CircuitBreaker

_SCAN_COUNT = 10_000
_clients: dict[RedisEndpoint, tuple[redis.Redis | RedisCluster, CircuitBreaker]] = {}
_lock = threading.Lock()
# Errors that say the server did not answer, as opposed to answering with an error.
_UNANSWERED = (redis.ConnectionError, redis.TimeoutError, OSError)


@dataclass(frozen=True)
class RedisEndpoint:
    """One Redis deployment as a store reaches it: its URL with the ``[redis]`` section's mode
    and policy. Stores with equal endpoints share a client, its pool and its breaker."""

    url: str
    mode: str
    sentinel_master: str
    socket_timeout: float
    connect_timeout: float
    breaker_failures: int
    breaker_open_seconds: float
    min_replica_acks: int = 0
    replica_timeout_ms: int = 2000

    @classmethod
    def of(cls, config: Config, store: str) -> RedisEndpoint:
        """The endpoint of ``store``, one of ``REDIS_STORES``: its own URL, else ``redis.url``."""
        settings = config.redis
        return cls(
            getattr(config, store).url or config.redis_url,
            settings.mode,
            settings.sentinel_master,
            settings.socket_timeout_seconds,
            settings.connect_timeout_seconds,
            settings.breaker_failures,
            settings.breaker_open_seconds,
            settings.min_replica_acks,
            settings.replica_timeout_ms,
        )

    @property
    def shown(self) -> str:
        """The URL without its password, and the master's name behind Sentinels."""
        if self.mode == "sentinel":
            return f"{redact_url(self.url)} (Sentinel master {self.sentinel_master!r})"
        return redact_url(self.url)


def _connected(endpoint: RedisEndpoint) -> tuple[redis.Redis | RedisCluster, CircuitBreaker]:
    if (found := _clients.get(endpoint)) is not None:  # no lock on the request path
        return found
    with _lock:
        if endpoint not in _clients:
            try:
                client = _client(endpoint)
            except ValueError as exc:
                url = redact_url(endpoint.url)
                raise StoreUnavailable(f"Redis URL {url!r} is not valid: {exc}") from exc
            breaker = CircuitBreaker(
                f"Redis at {endpoint.shown}",
                endpoint.breaker_failures,
                endpoint.breaker_open_seconds,
            )
            _clients[endpoint] = (client, breaker)
        return _clients[endpoint]


def _client(endpoint: RedisEndpoint) -> redis.Redis | RedisCluster:
    timeouts = {
        "socket_timeout": endpoint.socket_timeout,
        "socket_connect_timeout": endpoint.connect_timeout,
    }
    policy = {
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    }
    if endpoint.mode == "sentinel":
        return _sentinel_master(endpoint, timeouts, policy)
    if endpoint.mode == "cluster":
        return RedisCluster.from_url(endpoint.url, **timeouts, **policy)
    return redis.Redis.from_url(endpoint.url, **timeouts, **policy)


def _sentinel_master(endpoint: RedisEndpoint, timeouts: dict, policy: dict) -> redis.Redis:
    """The master's client: each new connection asks the Sentinels where the master is now,
    and a connection to a master that became a replica breaks, so the next one follows."""
    parsed = urlparse(endpoint.url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"scheme {parsed.scheme!r} is not redis:// or rediss://")
    sentinels = []
    for address in parsed.netloc.rpartition("@")[2].split(","):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"Sentinel address {address!r} is not host:port")
        sentinels.append((host, int(port)))
    database = parsed.path.strip("/") or "0"
    if not database.isdigit():
        raise ValueError(f"database {database!r} is not a number")
    master = {
        "password": unquote(parsed.password) if parsed.password else None,
        "username": unquote(parsed.username) if parsed.username else None,
        "db": int(database),
        "ssl": parsed.scheme == "rediss",
    }
    return Sentinel(sentinels, sentinel_kwargs=timeouts, **timeouts).master_for(
        endpoint.sentinel_master, **master, **policy
    )


def redis_client(endpoint: RedisEndpoint) -> redis.Redis | RedisCluster:
    """The process's client for ``endpoint`` (created on first use)."""
    return _connected(endpoint)[0]


@contextlib.contextmanager
def redis_errors(endpoint: RedisEndpoint, what: str) -> Iterator[None]:
    """Re-raises redis-py and socket errors as StoreUnavailable naming ``what`` failed, and
    fails at once, without calling, while the client's breaker is open."""
    breaker = _connected(endpoint)[1]
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


def replicated(endpoint: RedisEndpoint, marker: str, what: str) -> None:
    """Returns once ``endpoint.min_replica_acks`` replicas have every write the master had
    taken before this call, from any client; raises StoreUnavailable after its timeout.

    Redis WAIT waits for the replication offset of the calling connection's last write, so a
    write to ``marker`` comes first: this process's tasks wrote through other connections,
    and everything they wrote precedes it.
    """
    if endpoint.min_replica_acks == 0:
        return
    wanted, timeout = endpoint.min_replica_acks, endpoint.replica_timeout_ms
    pipe = redis_client(endpoint).pipeline(transaction=False)  # one connection for both
    pipe.set(marker, 1)
    pipe.execute_command("WAIT", wanted, timeout)
    with redis_errors(endpoint, what):
        acknowledged = int(pipe.execute()[1])
    if acknowledged < wanted:
        raise StoreUnavailable(
            f"{what} ({endpoint.shown}): {acknowledged} of {wanted} replicas had its writes "
            f"after {timeout} ms (redis.min_replica_acks)"
        )


def store_endpoints(config: Config) -> list[RedisEndpoint]:
    """The distinct deployments the stores of ``config`` use."""
    return list(dict.fromkeys(RedisEndpoint.of(config, store) for store in REDIS_STORES))


def delete_namespace(config: Config) -> int:
    """Deletes every key under ``redis.key_prefix`` in every store's deployment and returns how
    many there were.

    Keys are found with SCAN and freed with UNLINK (in the background), so other clients of the
    same server keep being answered meanwhile.
    """
    pattern = _glob_escaped(config.redis.key_prefix) + ":*"
    return sum(_delete_matching(endpoint, pattern) for endpoint in store_endpoints(config))


def _delete_matching(endpoint: RedisEndpoint, pattern: str) -> int:
    client = redis_client(endpoint)
    deleted, batch = 0, []
    with redis_errors(endpoint, "deleting the namespace"):
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


def ping(endpoint: RedisEndpoint) -> None:
    """Returns if Redis answers PING; raises StoreUnavailable with how to fix it otherwise."""
    try:
        redis_client(endpoint).ping()
    except (redis.RedisError, OSError, StoreUnavailable) as exc:
        raise StoreUnavailable(
            f"Redis is unreachable at {endpoint.shown}; start the local stack "
            "with `streamrec stack up` or set STREAMREC_REDIS_URL"
        ) from exc
