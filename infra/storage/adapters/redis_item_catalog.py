"""The item catalog in Redis, for the Redis online store.

``{prefix}:item:{item_id}`` holds the item's record as JSON (item schema v1). Three sets index
it for serving and training: ``{prefix}:category:{category}`` (the items of a category),
``{prefix}:unavailable`` and ``{prefix}:catalog`` (every item). A Lua script replaces a record
and moves the item between category sets in one atomic step, so a reader never sees an item
in a category it has left.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import orjson

from streamrec.infra.contracts.items import Item, item_from_dict
from streamrec.infra.core.config import Config
from streamrec.infra.storage.adapters.redis_connection import (
    RedisEndpoint,
    redis_client,
    redis_errors,
)
from streamrec.infra.storage.adapters.redis_keys import RedisKeys

_PUT = """
local P = ARGV[1]
for _, entry in ipairs(cjson.decode(ARGV[2])) do
  local id, record = entry[1], entry[2]
  local key = P .. ':item:' .. id
  local old = redis.call('GET', key)
  if old then
    for _, c in ipairs(cjson.decode(old)['categories']) do
      redis.call('SREM', P .. ':category:' .. c, id)
    end
  end
  local item = cjson.decode(record)
  for _, c in ipairs(item['categories']) do redis.call('SADD', P .. ':category:' .. c, id) end
  if item['available'] then
    redis.call('SREM', P .. ':unavailable', id)
  else
    redis.call('SADD', P .. ':unavailable', id)
  end
  redis.call('SET', key, record)
  redis.call('SADD', P .. ':catalog', id)
end
return 0
"""
_CHUNK = 2000


class RedisItemCatalog:
    def __init__(self, config: Config, endpoint: RedisEndpoint) -> None:
        self._config = config
        self._endpoint = endpoint
        self._client = client = redis_client(endpoint)
        # One hash tag for all of them in a cluster: one script updates many of them at once.
        self._prefix = RedisKeys(config.redis.key_prefix, endpoint.mode == "cluster").group(
            "catalog"
        )
        self._route = [self._prefix + ":catalog"]  # what a cluster sends the scripts by
        self._put = client.register_script(_PUT)

    def put(self, items: Iterable[Item]) -> int:
        entries = [[item.item_id, item.to_json_bytes().decode()] for item in items]
        with redis_errors(self._endpoint, "item catalog"):
            for start in range(0, len(entries), _CHUNK):
                self._put(
                    keys=self._route,
                    args=[self._prefix, orjson.dumps(entries[start : start + _CHUNK])],
                )
        return len(entries)

    def get(self, item_ids: Sequence[str]) -> dict[str, Item]:
        if not item_ids:
            return {}
        with redis_errors(self._endpoint, "item catalog"):
            records = self._client.mget([f"{self._prefix}:item:{i}" for i in item_ids])
        return {
            item_id: item_from_dict(orjson.loads(record))
            for item_id, record in zip(item_ids, records, strict=True)
            if record is not None
        }

    def scan(self) -> Iterator[Item]:
        ids: list[str] = []
        with redis_errors(self._endpoint, "item catalog"):
            for member in self._client.sscan_iter(f"{self._prefix}:catalog", count=_CHUNK):
                ids.append(member.decode())
                if len(ids) == _CHUNK:
                    yield from self.get(ids).values()
                    ids = []
        yield from self.get(ids).values()

    def in_categories(self, categories: Sequence[str]) -> set[str]:
        if not categories:
            return set()
        with redis_errors(self._endpoint, "item catalog"):
            members = self._client.sunion([f"{self._prefix}:category:{c}" for c in categories])
        return {member.decode() for member in members}

    def unavailable(self) -> set[str]:
        with redis_errors(self._endpoint, "item catalog"):
            return {m.decode() for m in self._client.smembers(f"{self._prefix}:unavailable")}
