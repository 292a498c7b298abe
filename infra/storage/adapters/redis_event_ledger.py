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

In a Redis Cluster the user id in these names is a hash tag, and a claim is named after its
user too, ``{prefix}:claims:{{user_id}}:{event_id}``: the script that forgets a user's old
claims then touches keys of one slot (:mod:`.redis_keys`). An event id is unique to its event,
so naming its claim after the user as well finds every redelivery of it.
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
    replicated,
)
from streamrec.infra.storage.adapters.redis_keys import RedisKeys
from streamrec.infra.storage.adapters.redis_scripts import SlotScript
from streamrec.infra.storage.ports.event_ledger import Claim

_CLAIM = """
local held, call = {}, redis.call
for i, pair in ipairs(cjson.decode(ARGV[1])) do
  local key, claimant = pair[1], pair[2]
  if call('SET', key, claimant, 'NX') or call('GET', key) == claimant then
    held[i] = '1'
  else
    held[i] = '0'
  end
end
return table.concat(held)
"""
# Per user, its watermark key and [filed claims key, held claims prefix, watermark after
# the batch, newest held claim's time or '', the held claims' ids as a JSON array]. Records the
# watermark, files the claims, and forgets the claims filed with a newest time older than the
# watermark before the batch minus the horizon (ARGV[3], ms).
_RECORD_USERS = """
local call = redis.call
for _, pair in ipairs(cjson.decode(ARGV[1])) do
  local key, user = pair[1], pair[2]
  local record = call('GET', key)
  local before = '-'
  if record then
    local batch, was_before, was_after = string.match(record, '^(%S+) (%S+) (%S+)$')
    if batch == ARGV[2] then before = was_before else before = was_after end
  end
  call('SET', key, ARGV[2] .. ' ' .. before .. ' ' .. user[3])
  local claimed, claims = user[1], user[2]
  if user[4] ~= '' then
    call('ZADD', claimed, user[4], user[5])
  end
  if before ~= '-' then
    local bound = '(' .. string.format('%d', tonumber(before) - tonumber(ARGV[3]))
    for _, member in ipairs(call('ZRANGEBYSCORE', claimed, '-inf', bound)) do
      local ids = cjson.decode(member)
      for start = 1, #ids, 1000 do
        local keys = {}
        for j = start, math.min(start + 999, #ids) do
          keys[#keys + 1] = claims .. ids[j]
        end
        call('DEL', unpack(keys))
      end
    end
    call('ZREMRANGEBYSCORE', claimed, '-inf', bound)
  end
end
return 0
"""
# Per user, its watermark key and [filed claims key, newest event time, newest held
# claim's time or '', the held claims' ids as a JSON array]. Raises the watermark's "after" (or
# records "batch - newest"), and files the claims.
_RESTORE_USERS = """
local call = redis.call
for _, pair in ipairs(cjson.decode(ARGV[1])) do
  local key, user = pair[1], pair[2]
  local record = call('GET', key)
  if not record then
    call('SET', key, ARGV[2] .. ' - ' .. user[2])
  else
    local batch, before, after = string.match(record, '^(%S+) (%S+) (%S+)$')
    if after == '-' or tonumber(after) < tonumber(user[2]) then
      call('SET', key, batch .. ' ' .. before .. ' ' .. user[2])
    end
  end
  if user[3] ~= '' then
    call('ZADD', user[1], user[3], user[4])
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
        self._keys = RedisKeys(self._prefix, self._endpoint.mode == "cluster")
        self._claim = SlotScript(self._client, _CLAIM)
        self._record_users = SlotScript(self._client, _RECORD_USERS)
        self._restore_users = SlotScript(self._client, _RESTORE_USERS)

    def claim(self, claims: Sequence[Claim]) -> list[bool]:
        held = [False] * len(claims)
        work = [(self._keys.claims(c.user_id) + c.event_id, c.claimant) for c in claims]
        with redis_errors(self._endpoint, "event ledger"):
            for positions, flags in self._claim.calls(work, chunk=_CHUNK):
                for position, flag in zip(positions, flags, strict=True):
                    held[position] = flag == 49  # b"1"
        return held

    def user_watermarks(self, topic: str, batch_id: int, user_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        batch = str(batch_id).encode()
        read = self._client.mget_nonatomic if self._keys.cluster else self._client.mget
        with redis_errors(self._endpoint, "event ledger"):
            for start in range(0, len(user_ids), _CHUNK):
                chunk = user_ids[start : start + _CHUNK]
                records = read([self._watermark_key(topic, u) for u in chunk])
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
        claimed = self._filed_key
        users = [
            (self._watermark_key(topic, user), [claimed(user), str(newest[user]), filed_at, ids])
            for user, filed_at, ids in _filed(held)
        ]
        holders = {claim.user_id for claim in held}
        users += [(self._watermark_key(topic, u), [claimed(u), str(n), "", ""])
                  for u, n in newest.items() if u not in holders]  # fmt: skip
        with redis_errors(self._endpoint, "event ledger"):
            self._restore_users.run(users, [str(batch_id)], _USERS_CHUNK)

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
            part = [
                self._filed_key(user),
                self._keys.claims(user),
                str(watermark),
                filed_at,
                member,
            ]
            users.append((self._watermark_key(topic, user), part))
        with redis_errors(self._endpoint, "event ledger"):
            self._record_users.run(users, [str(batch_id), str(horizon_ms)], _USERS_CHUNK)

    def replicated(self) -> None:
        replicated(self._endpoint, f"{self._prefix}:replicated", "event ledger")

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

    def _watermark_key(self, topic: str, user_id: str) -> str:
        return self._keys.user(f"user-watermark:{topic}", user_id)

    def _filed_key(self, user_id: str) -> str:
        return self._keys.user("claimed", user_id)


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
