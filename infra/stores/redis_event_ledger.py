"""The event ledger in Redis: one key per claimed event, one hash of watermarks per topic.

Claims are ``{prefix}:claims:{event_id}`` holding the claimant, set only if absent and
expiring after the horizon. A Lua script tests and sets a chunk of them in one round trip; the
chunk travels as one JSON argument and the answer as one string of flags, because packing and
parsing one Redis argument per event in Python cost more than the claims themselves.
Watermarks are fields of ``{prefix}:watermarks:{topic}``, each ``{"batch", "before",
"after"}``, so the value before a batch can be read again when the batch is replayed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import orjson

from streamrec.infra.config import Config
from streamrec.infra.stores.redis_connection import redis_client, redis_errors

_CLAIM = """
local held = {}
for i, claim in ipairs(cjson.decode(ARGV[3])) do
  local key = ARGV[2] .. claim[1]
  local won = redis.call('SET', key, claim[2], 'NX', 'EX', ARGV[1])
  if won or redis.call('GET', key) == claim[2] then
    held[i] = '1'
  else
    held[i] = '0'
  end
end
return table.concat(held)
"""
_CHUNK = 5000


class RedisEventLedger:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._client = redis_client(config)
        self._prefix = config.redis.key_prefix
        self._claim = self._client.register_script(_CLAIM)

    def claim(self, claims: Sequence[tuple[str, str]], ttl_seconds: int) -> list[bool]:
        held: list[bool] = []
        with redis_errors(self._config, "event ledger"):
            for start in range(0, len(claims), _CHUNK):
                chunk = orjson.dumps(claims[start : start + _CHUNK])
                flags = self._claim(args=[ttl_seconds, f"{self._prefix}:claims:", chunk])
                held.extend(flag == 49 for flag in flags)  # b"1"
        return held

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
            with redis_errors(self._config, "event ledger"):
                self._client.hset(self._key(topic), mapping=updates)

    def _records(self, topic: str) -> dict[int, dict]:
        with redis_errors(self._config, "event ledger"):
            raw = self._client.hgetall(self._key(topic))
        return {int(field): json.loads(value) for field, value in raw.items()}

    def _key(self, topic: str) -> str:
        return f"{self._prefix}:watermarks:{topic}"
