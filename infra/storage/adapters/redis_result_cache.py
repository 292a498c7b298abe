"""The result cache in Redis: one string key per ranking, expiring after ``ttl_seconds``.

Keys are ``{prefix}:results:{key}``; the caller's key names everything the ranking depends on.
The time to live bounds how stale a cached ranking can be.
"""

from __future__ import annotations

import orjson

from streamrec.infra.core.config import Config
from streamrec.infra.storage.adapters.redis_connection import (
    RedisEndpoint,
    redis_client,
    redis_errors,
)
from streamrec.infra.storage.ports.result_cache import RankedItems


class RedisResultCache:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._endpoint = RedisEndpoint.of(config, "result_cache")
        self._client = redis_client(self._endpoint)
        self._prefix = f"{config.redis.key_prefix}:results:"
        self._ttl = config.result_cache.ttl_seconds

    def get(self, key: str) -> RankedItems | None:
        with redis_errors(self._endpoint, "result cache"):
            cached = self._client.get(self._prefix + key)
        if cached is None:
            return None
        item_ids, scores = orjson.loads(cached)
        return RankedItems(item_ids, scores)

    def put(self, key: str, ranked: RankedItems) -> None:
        value = orjson.dumps([ranked.item_ids, ranked.scores])
        with redis_errors(self._endpoint, "result cache"):
            self._client.set(self._prefix + key, value, ex=self._ttl)
