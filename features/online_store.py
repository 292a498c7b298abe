"""The online store: each user's recent events in Redis, written by the feature job and read
by the feature job (for point-in-time history across batches) and by serving.

The key layout is part of the feature spec (:mod:`features.spec`). Writes are idempotent:
a member is unique per event, so replaying a batch after a crash changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import redis

from features.spec import user_history_key


class HistoryEntry(NamedTuple):
    timestamp: int
    event_id: str
    item_id: str


class UserHistoryStore:
    """Per-user recent events in Redis sorted sets, newest ``capacity`` kept."""

    def __init__(self, client: redis.Redis, prefix: str, capacity: int) -> None:
        self._client = client
        self._prefix = prefix
        self._capacity = capacity

    @classmethod
    def from_url(cls, url: str, prefix: str, capacity: int) -> UserHistoryStore:
        return cls(
            redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), prefix, capacity
        )

    def append(self, entries: Iterable[tuple[str, HistoryEntry]]) -> int:
        """Adds ``(user_id, entry)`` pairs in one pipeline; returns how many pairs were sent."""
        by_user: dict[str, dict[str, int]] = {}
        for user_id, entry in entries:
            member = json.dumps([entry.item_id, entry.event_id], separators=(",", ":"))
            by_user.setdefault(user_id, {})[member] = entry.timestamp
        pipe = self._client.pipeline(transaction=False)
        for user_id, members in by_user.items():
            key = user_history_key(self._prefix, user_id)
            pipe.zadd(key, members)
            pipe.zremrangebyrank(key, 0, -self._capacity - 1)
        pipe.execute()
        return sum(len(m) for m in by_user.values())

    def entries(self, user_ids: Sequence[str]) -> dict[str, list[HistoryEntry]]:
        """Every stored entry of each user, oldest first."""
        pipe = self._client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zrange(user_history_key(self._prefix, user_id), 0, -1, withscores=True)
        return {
            user_id: [_entry(member, score) for member, score in rows]
            for user_id, rows in zip(user_ids, pipe.execute(), strict=True)
        }

    def recent_items(self, user_id: str, limit: int) -> list[str]:
        """The user's ``limit`` most recent item ids, most recent first."""
        if limit <= 0:
            return []
        rows = self._client.zrevrange(user_history_key(self._prefix, user_id), 0, limit - 1)
        return [json.loads(member)[0] for member in rows]


def _entry(member: bytes, score: float) -> HistoryEntry:
    item_id, event_id = json.loads(member)
    return HistoryEntry(int(score), event_id, item_id)
