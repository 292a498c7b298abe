"""The event ledger in Redis: a key per held claim, each user's claims and watermark, and a hash
of partition watermarks per topic.

- Claims are ``{prefix}:claims:{event_id}`` holding the claimant, set only if absent, with no
  expiry. A Lua script tests and sets a chunk of them in one round trip; the chunk travels as
  one JSON argument and the answer as one string of flags, because packing and parsing one
  Redis argument per event in Python cost more than the claims themselves.
- Each batch files the claims a user holds in it as one member of ``{prefix}:claimed:{user_id}``
  (the event ids as a JSON array), scored by the newest of their event times; the member goes,
  with its claims, once the user's watermark is a horizon past that score (the port says why).
  One member per user and batch, not one per event: a second write per event halved the rate
  of claims.
- User watermarks are ``{prefix}:user-watermark:{topic}:{user_id}``, holding ``"batch before
  after"`` (``-`` for none), so the value before a batch can be read again when it is replayed.
- Partition watermarks are fields of ``{prefix}:watermarks:{topic}``, each ``{"batch",
  "before", "after"}``, for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import orjson

from streamrec.infra.core.config import Config
from streamrec.infra.storage.adapters.redis_connection import (
    RedisEndpoint,
    redis_client,
    redis_errors,
)
from streamrec.infra.storage.ports.event_ledger import Claim

_CLAIM = """
local held, call = {}, redis.call
local claims = ARGV[1] .. 'claims:'
for i, claim in ipairs(cjson.decode(ARGV[2])) do
  local key = claims .. claim[1]
  if call('SET', key, claim[2], 'NX') or call('GET', key) == claim[2] then
    held[i] = '1'
  else
    held[i] = '0'
  end
end
return table.concat(held)
"""
# Per user: [watermark key, user, watermark after the batch, newest held claim's time or '',
# the held claims' ids as a JSON array]. Records the watermark, files the claims, and forgets
# the claims filed with a newest time older than the watermark before the batch minus the
# horizon (ARGV[3], ms).
_RECORD_USERS = """
local call = redis.call
local claims = ARGV[1] .. 'claims:'
for _, user in ipairs(cjson.decode(ARGV[4])) do
  local key = ARGV[1] .. 'user-watermark:' .. user[1]
  local record = call('GET', key)
  local before = '-'
  if record then
    local batch, was_before, was_after = string.match(record, '^(%S+) (%S+) (%S+)$')
    if batch == ARGV[2] then before = was_before else before = was_after end
  end
  call('SET', key, ARGV[2] .. ' ' .. before .. ' ' .. user[3])
  local claimed = ARGV[1] .. 'claimed:' .. user[2]
  if user[4] ~= '' then
    call('ZADD', claimed, user[4], user[5])
  end
  if before ~= '-' then
    local bound = '(' .. string.format('%d', tonumber(before) - tonumber(ARGV[3]))
    for _, member in ipairs(call('ZRANGEBYSCORE', claimed, '-inf', bound)) do
      local ids = cjson.decode(member)
      for start = 1, #ids, 1000 do
        local keys = {}
        for i = start, math.min(start + 999, #ids) do
          keys[#keys + 1] = claims .. ids[i]
        end
        call('DEL', unpack(keys))
      end
    end
    call('ZREMRANGEBYSCORE', claimed, '-inf', bound)
  end
end
return 0
"""
# Per user: [watermark key, user, newest event time, newest held claim's time or '', the held
# claims' ids as a JSON array]. Raises the watermark's "after" (or records "batch - newest"),
# and files the claims.
_RESTORE_USERS = """
local call = redis.call
for _, user in ipairs(cjson.decode(ARGV[3])) do
  local key = ARGV[1] .. 'user-watermark:' .. user[1]
  local record = call('GET', key)
  if not record then
    call('SET', key, ARGV[2] .. ' - ' .. user[3])
  else
    local batch, before, after = string.match(record, '^(%S+) (%S+) (%S+)$')
    if after == '-' or tonumber(after) < tonumber(user[3]) then
      call('SET', key, batch .. ' ' .. before .. ' ' .. user[3])
    end
  end
  if user[4] ~= '' then
    call('ZADD', ARGV[1] .. 'claimed:' .. user[2], user[4], user[5])
  end
end
return 0
"""
_CHUNK = 5000
_USERS_CHUNK = 2000  # users per script call: a call blocks Redis while it runs


class RedisEventLedger:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._endpoint = RedisEndpoint.of(config, "event_ledger")
        self._client = redis_client(self._endpoint)
        self._prefix = config.redis.key_prefix
        self._claim = self._client.register_script(_CLAIM)
        self._record_users = self._client.register_script(_RECORD_USERS)
        self._restore_users = self._client.register_script(_RESTORE_USERS)

    def claim(self, claims: Sequence[Claim]) -> list[bool]:
        held: list[bool] = []
        with redis_errors(self._endpoint, "event ledger"):
            for start in range(0, len(claims), _CHUNK):
                chunk = orjson.dumps([claim[:2] for claim in claims[start : start + _CHUNK]])
                flags = self._claim(args=[f"{self._prefix}:", chunk])
                held.extend(flag == 49 for flag in flags)  # b"1"
        return held

    def user_watermarks(self, topic: str, batch_id: int, user_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        batch = str(batch_id).encode()
        with redis_errors(self._endpoint, "event ledger"):
            for start in range(0, len(user_ids), _CHUNK):
                chunk = user_ids[start : start + _CHUNK]
                records = self._client.mget([self._user_key(topic, u) for u in chunk])
                for user_id, record in zip(chunk, records, strict=True):
                    if record is None:
                        continue
                    recorded, before, after = record.split()
                    value = before if recorded == batch else after  # a replay: what it saw
                    if value != b"-":
                        found[user_id] = int(value)
        return found

    def restore_users(
        self, topic: str, batch_id: int, newest: Mapping[str, int], held: Sequence[Claim]
    ) -> None:
        users = [
            (f"{topic}:{user}", user, str(newest[user]), filed_at, member)
            for user, filed_at, member in _filed(held)
        ]
        users += [(f"{topic}:{u}", u, str(n), "", "") for u, n in newest.items()
                  if u not in {claim.user_id for claim in held}]  # fmt: skip
        with redis_errors(self._endpoint, "event ledger"):
            for start in range(0, len(users), _USERS_CHUNK):
                chunk = orjson.dumps(users[start : start + _USERS_CHUNK])
                self._restore_users(args=[f"{self._prefix}:", str(batch_id), chunk])

    def record_users(
        self,
        topic: str,
        batch_id: int,
        after: Mapping[str, int],
        held: Sequence[Claim],
        horizon_ms: int,
    ) -> None:
        filed: dict[str, tuple[int, list[str]]] = {}
        for claim in held:
            newest, ids = filed.setdefault(claim.user_id, (claim.timestamp, []))
            ids.append(claim.event_id)
            if claim.timestamp > newest:
                filed[claim.user_id] = (claim.timestamp, ids)
        users = []
        for user, watermark in after.items():
            newest, ids = filed.get(user, (None, []))
            member = orjson.dumps(ids).decode() if ids else ""
            filed_at = "" if newest is None else str(newest)
            users.append((f"{topic}:{user}", user, str(watermark), filed_at, member))
        with redis_errors(self._endpoint, "event ledger"):
            for start in range(0, len(users), _USERS_CHUNK):
                chunk = users[start : start + _USERS_CHUNK]
                args = [f"{self._prefix}:", str(batch_id), str(horizon_ms), orjson.dumps(chunk)]
                self._record_users(args=args)

    def watermarks(self, topic: str, batch_id: int) -> dict[int, int]:
        found = {}
        for partition, record in self._records(topic).items():
            if record["batch"] == batch_id:  # a replay: what the batch saw the first time
                if record["before"] is not None:
                    found[partition] = record["before"]
            else:
                found[partition] = record["after"]
        return found

    def record_watermarks(self, topic: str, batch_id: int, after: Mapping[int, int]) -> None:
        records = self._records(topic)
        updates = {}
        for partition, watermark in after.items():
            previous = records.get(partition)
            if previous is None:
                before = None
            elif previous["batch"] == batch_id:
                before = previous["before"]
            else:
                before = previous["after"]
            record = {"batch": batch_id, "before": before, "after": watermark}
            updates[str(partition)] = json.dumps(record)
        if updates:
            with redis_errors(self._endpoint, "event ledger"):
                self._client.hset(self._key(topic), mapping=updates)

    def _records(self, topic: str) -> dict[int, dict]:
        with redis_errors(self._endpoint, "event ledger"):
            raw = self._client.hgetall(self._key(topic))
        return {int(field): json.loads(value) for field, value in raw.items()}

    def _key(self, topic: str) -> str:
        return f"{self._prefix}:watermarks:{topic}"

    def _user_key(self, topic: str, user_id: str) -> str:
        return f"{self._prefix}:user-watermark:{topic}:{user_id}"


def _filed(held: Sequence[Claim]) -> list[tuple[str, str, str]]:
    """Each user's held claims as one member: (user, newest claim's time, JSON id array), the
    ids in timeline order, so the same claims always make the same member."""
    by_user: dict[str, list[Claim]] = {}
    for claim in held:
        by_user.setdefault(claim.user_id, []).append(claim)
    filed = []
    for user, claims in by_user.items():
        claims.sort(key=lambda c: (c.timestamp, c.event_id))
        ids = orjson.dumps([c.event_id for c in claims]).decode()
        filed.append((user, str(claims[-1].timestamp), ids))
    return filed
