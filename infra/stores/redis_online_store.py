"""The online store in Redis: each user's recent events in a sorted set.

The key layout is the feature spec's (:mod:`streamrec.infra.contracts.feature_spec`). Writes are
idempotent: a member is unique per event, so replaying a batch after a crash changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from streamrec.infra.config import Config
from streamrec.infra.contracts.feature_spec import user_history_key
from streamrec.infra.ports.online_store import HistoryEntry
from streamrec.infra.stores import redis_connection
from streamrec.infra.stores.redis_connection import redis_client, redis_errors


class RedisOnlineStore:
    """Per-user recent events in Redis sorted sets, the newest ``capacity`` kept."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._client = redis_client(config)
        self._prefix = config.redis.key_prefix
        self._capacity = config.features.online_history_length

    def ping(self) -> None:
        redis_connection.ping(self._config)

    def append_history(self, entries: Iterable[tuple[str, HistoryEntry]]) -> int:
        by_user: dict[str, dict[str, int]] = {}
        for user_id, entry in entries:
            member = json.dumps([entry.item_id, entry.event_id], separators=(",", ":"))
            by_user.setdefault(user_id, {})[member] = entry.timestamp
        pipe = self._client.pipeline(transaction=False)
        for user_id, members in by_user.items():
            key = user_history_key(self._prefix, user_id)
            pipe.zadd(key, members)
            pipe.zremrangebyrank(key, 0, -self._capacity - 1)
        with redis_errors(self._config, "online store"):
            pipe.execute()
        return sum(len(m) for m in by_user.values())

    def histories(self, user_ids: Sequence[str]) -> dict[str, list[HistoryEntry]]:
        pipe = self._client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zrange(user_history_key(self._prefix, user_id), 0, -1, withscores=True)
        with redis_errors(self._config, "online store"):
            rows_per_user = pipe.execute()
        return {
            user_id: [_entry(member, score) for member, score in rows]
            for user_id, rows in zip(user_ids, rows_per_user, strict=True)
        }

    def recent_items(self, user_id: str, limit: int) -> list[str]:
        if limit <= 0:
            return []
        key = user_history_key(self._prefix, user_id)
        with redis_errors(self._config, "online store"):
            rows = self._client.zrevrange(key, 0, limit - 1)
        return [json.loads(member)[0] for member in rows]


def _entry(member: bytes, score: float) -> HistoryEntry:
    item_id, event_id = json.loads(member)
    return HistoryEntry(int(score), event_id, item_id)
