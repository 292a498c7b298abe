"""The online store in Redis: each user's recent events in a sorted set.

The key layout is the feature spec's (:mod:`streamrec.infra.contracts.feature_spec`). Writes are
idempotent: a member is unique per event, so replaying a batch after a crash changes nothing.
A batch's entries travel to a Lua script as one JSON argument: packing one Redis argument per
entry in Python took longer than Redis took to store them. In a Redis Cluster, the users of a
batch are split by slot (:mod:`.redis_scripts`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

import orjson

from streamrec.infra.contracts.items import Item
from streamrec.infra.core.config import Config
from streamrec.infra.storage.adapters import redis_connection
from streamrec.infra.storage.adapters.redis_connection import (
    RedisEndpoint,
    redis_client,
    redis_errors,
)
from streamrec.infra.storage.adapters.redis_item_catalog import RedisItemCatalog
from streamrec.infra.storage.adapters.redis_item_statistics import RedisItemStatistics
from streamrec.infra.storage.adapters.redis_keys import RedisKeys
from streamrec.infra.storage.adapters.redis_scripts import SlotScript
from streamrec.infra.storage.adapters.redis_tracked_reads import TrackedReads
from streamrec.infra.storage.ports.online_store import HistoryEntry, ItemEvent, Ranking, UserHistory

_APPEND = """
for _, pair in ipairs(cjson.decode(ARGV[1])) do
  local key, entries = pair[1], pair[2]
  for start = 1, #entries, 2000 do
    local args = {}
    for i = start, math.min(start + 1999, #entries) do
      args[#args + 1] = entries[i][1]
      args[#args + 1] = entries[i][2]
    end
    redis.call('ZADD', key, unpack(args))
  end
end
return 0
"""
_HISTORIES = """
local found = {}
for i, pair in ipairs(cjson.decode(ARGV[1])) do
  local key, span = pair[1], pair[2]
  local within = redis.call('ZRANGEBYSCORE', key, span[1], '(' .. span[2], 'WITHSCORES')
  local before = redis.call('ZREVRANGEBYSCORE', key, '(' .. span[1], '-inf', 'WITHSCORES',
                            'LIMIT', 0, ARGV[2])
  found[i] = {before, within}
end
return cjson.encode(found)
"""
_APPEND_CHUNK = 20_000  # events per script call
_HISTORIES_CHUNK = 2000  # users per script call: a call blocks Redis while it runs


class RedisOnlineStore:
    """Per-user recent events in Redis sorted sets, the newest ``capacity`` kept."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._endpoint = RedisEndpoint.of(config, "online_store")
        self._client = redis_client(self._endpoint)
        self._keys = RedisKeys(config.redis.key_prefix, self._endpoint.mode == "cluster")
        self._capacity = config.features.online_history_length
        self._items = RedisItemStatistics(config, self._endpoint)
        self._catalog = RedisItemCatalog(config, self._endpoint)
        self._append = SlotScript(self._client, _APPEND)
        self._histories = SlotScript(self._client, _HISTORIES)
        self._reads = TrackedReads(self._client, config.online_store.tracked_histories)

    def ping(self) -> None:
        redis_connection.ping(self._endpoint)

    def append_history(self, entries: Iterable[tuple[str, HistoryEntry]]) -> int:
        sent, dumps = 0, orjson.dumps  # looked up once: this runs for every accepted event
        history = self._keys.history
        with redis_errors(self._endpoint, "online store"):
            for chunk in _chunks(entries, _APPEND_CHUNK):
                by_user: dict[str, list] = {}
                for user_id, (timestamp, event_id, item_id, event_type) in chunk:
                    member = dumps((item_id, event_id, event_type)).decode()
                    if (members := by_user.get(user_id)) is None:
                        members = by_user[user_id] = []
                    members.append((timestamp, member))
                work = [(history(u), m) for u, m in by_user.items()]
                self._append.run(work, chunk=len(work))
                sent += len(chunk)
        return sent

    def trim_histories(self, user_ids: Iterable[str]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zremrangebyrank(self._keys.history(user_id), 0, -self._capacity - 1)
        with redis_errors(self._endpoint, "online store"):
            pipe.execute()

    def replicated(self) -> None:
        redis_connection.replicated(
            self._endpoint, f"{self._keys.prefix}:replicated", "online store"
        )

    def histories(
        self, spans: Mapping[str, tuple[int, int]], length: int
    ) -> dict[str, list[HistoryEntry]]:
        users = list(spans)
        found: dict[str, list[HistoryEntry]] = {}
        work = [(self._keys.history(user), spans[user]) for user in users]
        with redis_errors(self._endpoint, "online store"):
            for positions, answer in self._histories.calls(work, [length], _HISTORIES_CHUNK):
                for position, (before, within) in zip(positions, orjson.loads(answer), strict=True):
                    found[users[position]] = _entries(before, newest_first=True) + _entries(within)
        return found

    def recent_items(self, user_id: str, limit: int) -> list[str]:
        if limit <= 0:
            return []
        key = self._keys.history(user_id)
        with redis_errors(self._endpoint, "online store"):
            rows = self._client.zrevrange(key, 0, limit - 1)
        return [orjson.loads(member)[0] for member in rows]

    def recent_history(self, user_id: str, limit: int) -> UserHistory:
        if limit <= 0:
            return UserHistory.of([])
        key = self._keys.history(user_id)
        command = ("ZREVRANGE", key, 0, limit - 1, "WITHSCORES")
        with redis_errors(self._endpoint, "online store"):
            return self._reads.read(key, command, _user_history)

    def add_item_events(self, once_key: str, events: Iterable[ItemEvent]) -> bool:
        return self._items.add(once_key, events)

    def advance_item_windows(self, watermark: int) -> None:
        self._items.advance(watermark)

    def popular_items(self, window: str, k: int) -> Ranking:
        return self._items.popular(window, k)

    def item_frequencies(self) -> Ranking:
        return self._items.frequencies()

    def put_items(self, items: Iterable[Item]) -> int:
        return self._catalog.put(items)

    def items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        return self._catalog.get(item_ids)

    def catalog(self) -> Iterator[Item]:
        return self._catalog.scan()

    def items_in_categories(self, categories: Sequence[str]) -> set[str]:
        return self._catalog.in_categories(categories)

    def unavailable_items(self) -> set[str]:
        return self._catalog.unavailable()


def _entries(flat: list, newest_first: bool = False) -> list[HistoryEntry]:
    """Entries from a WITHSCORES reply (member, score, member, score...) in the reply's order;
    ``newest_first`` reverses a newest-first reply into oldest first.

    Lua's JSON encoder writes an empty reply as ``{}``, so anything empty means no entries.
    """
    if not flat:
        return []
    entries = _decoded(flat[0::2], flat[1::2])
    if newest_first:
        entries.reverse()
    return entries


def _user_history(rows: list) -> UserHistory:
    if rows and not isinstance(rows[0], list):  # RESP2 replies flat: member, score, ...
        rows = list(zip(rows[0::2], rows[1::2], strict=True))
    # A member names its event, whose time is its score: the members name the entries.
    members = [m for m, _ in rows]
    signature = hashlib.blake2b(b"\0".join(members), digest_size=16).digest()
    return UserHistory(signature, len(rows), lambda: _decoded(members, [s for _, s in rows]))


def _decoded(members: list, scores: list) -> list[HistoryEntry]:
    """Entries from stored members ``[item_id, event_id, event_type]`` (before feature spec 3
    members had no event type) and their scores, the event times.

    The members are decoded together, as one JSON array: the feature job reads about twenty
    entries for every user of a batch, and a decoder call per member cost a sixth more.
    """
    if not members:
        return []
    joined = b",".join(members) if isinstance(members[0], bytes) else ",".join(members).encode()
    decoded = orjson.loads(b"[" + joined + b"]")
    return [
        HistoryEntry(int(float(score)), m[1], m[0], m[2] if len(m) > 2 else "")
        for m, score in zip(decoded, scores, strict=True)
    ]


def _chunks(entries: Iterable[tuple[str, HistoryEntry]], size: int) -> Iterator[list]:
    chunk = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
