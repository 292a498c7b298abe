"""Reads on the serving hot path: one connection per thread, replies kept until Redis says
their key changed.

Every Recommend reads the user's history, a cached one too: the result cache's key names it.
That round trip cost about 150 µs of this machine's CPU (client and Redis), about a fifth of a
cached request. With server-assisted client-side caching (``CLIENT TRACKING``, Redis 6 and
later), Redis remembers the keys a connection read and pushes an ``invalidate`` message on that
connection when one of them changes, as when the feature job appends an event. A reply whose
key has had no invalidation is answered from memory, after a non-blocking poll (about 1 µs)
that takes whatever invalidations have arrived.

Why a kept reply is never older than what Redis has sent: the reply and the invalidations of
its key travel on one connection, in order, so the first change after the read invalidates it
before any later reply could arrive. A broken connection (or a reconnect) drops every kept
reply, because invalidations may have been lost with it. Each thread has its own connection
and its own replies, so the hot path takes no lock.

Through redis-py's pool, a command also cost about 30 µs of client CPU around the command
itself: checking a connection out and in, polling it for stray replies, and the retry
wrapper. These connections skip that, and replies are raw, without redis-py's response
callbacks. A connection that broke (Redis restarted) is reconnected and the command sent once
more; any other failure raises, and the connection is dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.cluster import RedisCluster
from redis.sentinel import SentinelManagedConnection

T = TypeVar("T")


class TrackedReads:
    """Read-only commands of one key each, on a connection per thread. With ``capacity`` > 0,
    each thread keeps up to that many keys' results (least recently read dropped first) until
    Redis invalidates them; 0 reads every time (for a Redis without ``CLIENT TRACKING``).

    A Redis Cluster's client sends each read to the node of its key, and nothing is kept:
    a thread would need a tracked connection to every node."""

    def __init__(self, client: redis.Redis | RedisCluster, capacity: int) -> None:
        self._cluster = client if isinstance(client, RedisCluster) else None
        self._pool = None if self._cluster else client.connection_pool
        self._capacity = capacity
        self._local = threading.local()

    def read(self, key: str, command: tuple, build: Callable[[object], T]) -> T:
        """``build(reply)`` for ``command``, which must read ``key`` and nothing else."""
        if self._cluster is not None:
            return build(self._cluster.execute_command(*command))
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = _ThreadReader(self._pool, self._capacity)
        try:
            return reader.read(key, command, build)
        except redis.ConnectionError:
            return reader.read(key, command, build)  # once more, on a new connection


class _ThreadReader:
    def __init__(self, pool: redis.ConnectionPool, capacity: int) -> None:
        self._capacity = capacity
        settings = dict(pool.connection_kwargs)
        if capacity > 0:
            settings["protocol"] = 3  # pushes arrive on the connection that read the key
        self._connection = pool.connection_class(**settings)
        # A Sentinel's connection asks there for the master's address in connect(), which
        # sending alone does not call (a pool calls it); other connections connect as they send.
        self._asks_sentinels = isinstance(self._connection, SentinelManagedConnection)
        self._kept: dict[str, tuple[tuple, object]] = {}
        if capacity > 0:
            self._connection.register_connect_callback(self._track)
            # The parser delivers pushes to this handler, also those that arrive ahead of a
            # reply; redis-py's own client-side cache registers its handler the same way.
            self._connection._parser.set_invalidation_push_handler(self._invalidated)

    def read(self, key: str, command: tuple, build: Callable[[object], T]) -> T:
        kept = self._kept.get(key)
        if kept is not None and kept[0] == command and self._still_current(key):
            return kept[1]
        value = build(self._execute(command))
        if self._capacity > 0:
            self._keep(key, command, value)
        return value

    def _still_current(self, key: str) -> bool:
        """Takes the invalidations that have arrived; whether ``key``'s result outlived them."""
        try:
            while self._connection.can_read(0):
                self._connection.read_response(push_request=True)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._disconnect()
            raise
        return key in self._kept

    def _execute(self, command: tuple) -> object:
        try:
            if self._asks_sentinels:
                self._connection.connect()
            self._connection.send_command(*command)
            return self._connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._disconnect()
            raise

    def _keep(self, key: str, command: tuple, value: object) -> None:
        kept = self._kept
        kept.pop(key, None)  # to the end: dropped last
        kept[key] = (command, value)
        if len(kept) > self._capacity:
            del kept[next(iter(kept))]

    def _disconnect(self) -> None:
        self._connection.disconnect()
        self._kept.clear()

    def _track(self, connection: redis.connection.AbstractConnection) -> None:
        """On every (re)connect: nothing kept from before is known to be current."""
        self._kept.clear()
        connection.send_command("CLIENT", "TRACKING", "ON")
        connection.read_response()

    def _invalidated(self, message: list) -> None:
        keys = message[1]
        if keys is None:  # FLUSHDB, FLUSHALL, or Redis's tracking table overflowed
            self._kept.clear()
            return
        for key in keys:
            self._kept.pop(key.decode() if isinstance(key, bytes) else key, None)
