"""Item popularity windows and decayed frequencies in Redis, for the Redis online store.

**Windows.** Each window (``features.popularity_windows``) has a sorted set of counts per item,
``{prefix}:pop:{window}``, and buckets of one step each (``window_step_ms``, a 24th of its
length), ``...:b:{index}``. New
events are added to both; when the event-time watermark passes the end of a bucket's
window, the bucket is subtracted from the window and deleted. ``...:live`` holds the first
bucket still counted: an event for an older bucket is too old for the window.
``...:buckets`` indexes the buckets that hold counts, so sliding visits only those: a backlog
spanning a year has a hundred thousand hour-window bucket slots, nearly all empty.

**Frequencies.** ``{prefix}:freq`` holds each item's exponentially decayed event count with
the given half-life, kept by forward decay: an event at time ``t`` adds
``2 ** ((t - landmark) / half_life)`` and nothing is ever multiplied at write time, so adding
is exact whatever the order. When the watermark is 100 half-lives past the landmark, the
scores are rescaled to a new landmark before floats could overflow. Events more than that past
the landmark (live events after history imported from years ago) move it in the same call
that adds them.

Adding is guarded by a once-key (``{prefix}:applied:{key}``) set in the same Lua call, so a
replayed batch is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import orjson

from streamrec.infra.contracts.popularity_prior import window_step_ms
from streamrec.infra.core.config import Config
from streamrec.infra.storage.adapters.redis_connection import (
    RedisEndpoint,
    redis_client,
    redis_errors,
)
from streamrec.infra.storage.adapters.redis_keys import RedisKeys
from streamrec.infra.storage.ports.online_store import ItemEvent, Ranking

_ONCE_TTL_SECONDS = 14 * 86_400  # longer than a batch can wait to be replayed
_RESCALE_HALF_LIVES = 100  # 2 ** 100 is far from a float's limit, 2 ** 1024
_SLIDE_BUCKETS = 256  # per script call: tens of milliseconds of Redis at most
# Indexing buckets of the layout before ``:buckets`` probes every slot since ``:lowest``, and a
# probe costs a small fraction of a slide: this many per slid bucket keep a call as short.
_INDEX_SLOTS_PER_BUCKET = 16

# Moves the frequencies' landmark forward to ``to``: scores and total shrink alike.
_RESCALE = """
local function rescale(P, to, half_life)
  local meta = P .. ':freq:meta'
  local landmark = tonumber(redis.call('HGET', meta, 'landmark') or to)
  local factor = math.pow(2, (landmark - to) / half_life)
  redis.call('ZUNIONSTORE', P .. ':freq', 1, P .. ':freq', 'WEIGHTS', factor)
  local total = tonumber(redis.call('HGET', meta, 'total') or '0') * factor
  redis.call('HSET', meta, 'landmark', to, 'total', total)
end
"""

_ADD = (
    _RESCALE
    + """
local P = ARGV[1]
if not redis.call('SET', P .. ':applied:' .. ARGV[2], 1, 'NX', 'EX', ARGV[3]) then return 0 end
local work = cjson.decode(ARGV[4])
for _, w in ipairs(work['windows']) do
  local window = P .. ':pop:' .. w[1]
  local live = tonumber(redis.call('GET', window .. ':live') or '-1e300')
  local indexed, totals = {}, {}
  for _, e in ipairs(w[2]) do
    if e[1] >= live then
      redis.call('ZINCRBY', window .. ':b:' .. e[1], e[3], e[2])
      totals[e[2]] = (totals[e[2]] or 0) + e[3]
      if not indexed[e[1]] then
        redis.call('ZADD', window .. ':buckets', e[1], e[1])
        indexed[e[1]] = true
      end
    end
  end
  for item, count in pairs(totals) do redis.call('ZINCRBY', window, count, item) end
end
local half_life, landmark = tonumber(ARGV[5]), work['landmark']
local stored = tonumber(redis.call('HGET', P .. ':freq:meta', 'landmark') or landmark)
if landmark > stored then rescale(P, landmark, half_life) end
local scale = math.pow(2, (landmark - math.max(stored, landmark)) / half_life)
for _, e in ipairs(work['weights']) do redis.call('ZINCRBY', P .. ':freq', e[2] * scale, e[1]) end
redis.call('HINCRBYFLOAT', P .. ':freq:meta', 'total', work['total'] * scale)
return 1
"""
)

_ADVANCE = (
    _RESCALE
    + """
local P, watermark, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[5])
local index_per_bucket = tonumber(ARGV[7])
for _, w in ipairs(cjson.decode(ARGV[3])) do
  local window, size, length = P .. ':pop:' .. w[1], w[2], w[3]
  local live_from = math.floor((watermark - length) / size) + 1
  local live = tonumber(redis.call('GET', window .. ':live') or '')
  local lowest = tonumber(redis.call('GET', window .. ':lowest') or '')
  if lowest then  -- written before buckets were indexed: index the ones still counted
    local from, newest = math.max(live or lowest, lowest), math.floor(watermark / size)
    local to = math.min(newest, from + budget * index_per_bucket - 1)
    for b = from, to do
      if redis.call('EXISTS', window .. ':b:' .. b) == 1 then
        redis.call('ZADD', window .. ':buckets', b, b)
      end
    end
    if to < newest then
      redis.call('SET', window .. ':lowest', to + 1)
      return 1
    end
    redis.call('DEL', window .. ':lowest')
  end
  local due = redis.call('ZRANGEBYSCORE', window .. ':buckets', '-inf', live_from - 1,
    'LIMIT', 0, budget)
  for _, b in ipairs(due) do
    local bucket = window .. ':b:' .. b
    local counts = redis.call('ZRANGE', bucket, 0, -1, 'WITHSCORES')
    for i = 1, #counts, 2 do
      redis.call('ZINCRBY', window, -tonumber(counts[i + 1]), counts[i])
    end
    redis.call('DEL', bucket)
    redis.call('ZREM', window .. ':buckets', b)
  end
  budget = budget - #due
  redis.call('ZREMRANGEBYSCORE', window, '-inf', 0)
  if live == nil or live_from > live then redis.call('SET', window .. ':live', live_from) end
  if budget <= 0 then return 1 end
end
local half_life = tonumber(ARGV[4])
local landmark = tonumber(redis.call('HGET', P .. ':freq:meta', 'landmark') or '')
if landmark and watermark - landmark > tonumber(ARGV[6]) * half_life then
  rescale(P, watermark, half_life)
end
redis.call('HSET', P .. ':items:current_to', 'watermark', watermark)
return 0
"""
)


class RedisItemStatistics:
    def __init__(self, config: Config, endpoint: RedisEndpoint) -> None:
        self._config = config
        self._endpoint = endpoint
        self._client = client = redis_client(endpoint)
        # One hash tag for all of them in a cluster: one script updates many of them at once.
        self._prefix = RedisKeys(config.redis.key_prefix, endpoint.mode == "cluster").group("items")
        self._route = [self._prefix + ":freq"]  # what a cluster sends the scripts by
        lengths = config.features.window_lengths_ms()
        self._windows = [[name, window_step_ms(length), length] for name, length in lengths.items()]
        self._half_life_ms = config.features.frequency_half_life_hours * 3_600_000
        self._add = client.register_script(_ADD)
        self._advance = client.register_script(_ADVANCE)

    def add(self, once_key: str, events: Iterable[ItemEvent]) -> bool:
        """Counts are summed here per window bucket and item before they travel, which makes
        the Lua call's work proportional to distinct (bucket, item) pairs, not to events.
        The sums are vectorised: the feature job calls this for every event it accepts. The
        script sums each window's counts per item again, over the buckets it still counts,
        so a window's own sorted set takes one increment per item rather than per pair.

        Buckets that end before the newest of these events minus a window's length are left
        out of that window: the watermark is at least that new, so sliding would subtract them
        again at once. When a backlog is replayed, that is most of the short windows' work.
        """
        events = events if isinstance(events, list) else list(events)
        codes: dict[str, int] = {}
        item_codes = np.fromiter(
            (codes.setdefault(e.item_id, len(codes)) for e in events), np.int64, len(events)
        )
        if not codes:
            return True
        times = np.fromiter((e.timestamp for e in events), np.int64, len(item_codes))
        items = list(codes)
        newest = int(times.max())
        landmark = max(
            self._landmark(int(times.min())),
            int(newest - _RESCALE_HALF_LIVES * self._half_life_ms),
        )
        windows = [
            [name, _bucket_counts(times, item_codes, items, size, (newest - length) // size + 1)]
            for name, size, length in self._windows
        ]
        decay = np.exp2((times - landmark) / self._half_life_ms)
        weights = np.bincount(item_codes, weights=decay, minlength=len(items))
        work = {
            "windows": windows,
            "weights": list(zip(items, weights.tolist(), strict=True)),
            "total": float(weights.sum()),
            "landmark": landmark,
        }
        with redis_errors(self._endpoint, "online store"):
            added = self._add(
                keys=self._route,
                args=[
                    self._prefix,
                    once_key,
                    _ONCE_TTL_SECONDS,
                    orjson.dumps(work),
                    self._half_life_ms,
                ],
            )
        return bool(added)

    def _landmark(self, candidate: int) -> int:
        """The decay's reference time: the first writer sets it, every writer then reads it."""
        key = f"{self._prefix}:freq:meta"
        with redis_errors(self._endpoint, "online store"):
            self._client.hsetnx(key, "landmark", candidate)
            return int(float(self._client.hget(key, "landmark")))

    def advance(self, watermark: int) -> None:
        """Slides the windows in calls of at most ``_SLIDE_BUCKETS`` buckets each.

        Redis runs one script at a time, so one call sliding a backlog's thousands of buckets
        held every other client (the feature job's tasks, the ranking service) for seconds.
        Between calls readers may see a window partly slid; ``current_to`` moves last.
        """
        windows = orjson.dumps(self._windows)
        half_life = self._half_life_ms
        args = [
            self._prefix,
            watermark,
            windows,
            half_life,
            _SLIDE_BUCKETS,
            _RESCALE_HALF_LIVES,
            _INDEX_SLOTS_PER_BUCKET,
        ]
        more = True
        with redis_errors(self._endpoint, "online store"):
            while more:
                more = bool(self._advance(keys=self._route, args=args))

    def popular(self, window: str, k: int) -> Ranking:
        if window not in {name for name, _, _ in self._windows}:
            known = ", ".join(name for name, _, _ in self._windows)
            raise ValueError(f"no popularity window {window!r} (configured: {known})")
        with redis_errors(self._endpoint, "online store"):
            pipe = self._client.pipeline(transaction=False)
            pipe.zrevrange(f"{self._prefix}:pop:{window}", 0, k - 1, withscores=True)
            pipe.hget(f"{self._prefix}:items:current_to", "watermark")
            rows, current_to = pipe.execute()
        return Ranking([(item.decode(), score) for item, score in rows], _int(current_to))

    def frequencies(self) -> Ranking:
        with redis_errors(self._endpoint, "online store"):
            pipe = self._client.pipeline(transaction=False)
            pipe.zrevrange(f"{self._prefix}:freq", 0, -1, withscores=True)
            pipe.hget(f"{self._prefix}:freq:meta", "total")
            pipe.hget(f"{self._prefix}:items:current_to", "watermark")
            rows, total, current_to = pipe.execute()
        total = float(total or 0) or 1.0
        return Ranking([(item.decode(), score / total) for item, score in rows], _int(current_to))


def _bucket_counts(
    times: np.ndarray, item_codes: np.ndarray, items: list[str], size: int, live_from: int
) -> list[list]:
    """``[bucket, item, count]`` for each (bucket, item) pair from ``live_from`` on."""
    buckets = times // size
    keep = buckets >= live_from
    if not keep.any():
        return []
    first = int(buckets[keep].min())
    pairs = (buckets[keep] - first) * len(items) + item_codes[keep]
    unique, counts = np.unique(pairs, return_counts=True)
    bucket_of, item_of = np.divmod(unique, len(items))
    return [
        [first + b, items[i], n]
        for b, i, n in zip(bucket_of.tolist(), item_of.tolist(), counts.tolist(), strict=True)
    ]


def _int(value: bytes | None) -> int | None:
    return int(float(value)) if value is not None else None
