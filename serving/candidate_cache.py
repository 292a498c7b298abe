"""The Redis candidate cache: recent Recommend results, per model version, user and k.

The key carries the model version, so a newly served model never returns results ranked by
an old one. Entries expire after ``ttl_seconds``; that bounds how stale a user's results may
be after new events. The cache is an optimisation only: if Redis misbehaves, reads miss and
writes are skipped rather than failing the request.
"""

from __future__ import annotations

import json
import logging

import redis

from serving.retrieval_model import Ranked

log = logging.getLogger(__name__)


class CandidateCache:
    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds

    def key(self, model_version: int, user_id: str, k: int) -> str:
        return f"{self._prefix}:candidates:v{model_version}:{k}:{user_id}"

    def get(self, model_version: int, user_id: str, k: int) -> Ranked | None:
        if self._ttl <= 0:
            return None
        try:
            cached = self._client.get(self.key(model_version, user_id, k))
        except redis.RedisError as exc:
            log.warning("candidate cache read failed: %s", exc)
            return None
        if cached is None:
            return None
        items, scores = json.loads(cached)
        return Ranked(items, scores)

    def put(self, model_version: int, user_id: str, k: int, ranked: Ranked) -> None:
        if self._ttl <= 0:
            return
        value = json.dumps([ranked.item_ids, ranked.scores], separators=(",", ":"))
        try:
            self._client.set(self.key(model_version, user_id, k), value, ex=self._ttl)
        except redis.RedisError as exc:
            log.warning("candidate cache write failed: %s", exc)
