"""Lua scripts over many keys, on one Redis server or across a Redis Cluster's slots.

A script here takes its work in one JSON argument, ``ARGV[1]``: a list of ``[key, part]``
pairs, a key and that key's part of the work (one argument, because packing one Redis argument
per entry in Python cost more than Redis took to run the script). Its answer has one element
per pair, in order: a character of a string, or an element of a JSON array. The first pair's
key is also declared, as ``KEYS[1]``, which is what routes the call in a cluster.

On one server, each chunk of pairs is one call. A cluster runs a script only on the node that
owns its keys, and only if they all hash to one slot, so there the pairs are grouped by the
slot of their key, each group is one call, and the calls travel in one pipeline that redis-py
splits by node.
A node that does not know the script (restarted, or a replica promoted since it was loaded)
answers NOSCRIPT; the script is then loaded on every master and the calls are sent again,
which is safe because every script here can be run twice with the same effect.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot


class SlotScript:
    """One script of the module's form, run over as many (key, part) pairs as a batch has."""

    def __init__(self, client: redis.Redis | RedisCluster, source: str) -> None:
        self._client = client
        self._source = source
        self._script = client.register_script(source)
        self._cluster = isinstance(client, RedisCluster)

    def run(
        self, work: Sequence[tuple[str, object]], args: Sequence = (), chunk: int = 2000
    ) -> None:
        """Runs over ``work`` for the effect alone."""
        for _ in self.calls(work, args, chunk):
            pass

    def calls(
        self, work: Sequence[tuple[str, object]], args: Sequence = (), chunk: int = 2000
    ) -> Iterator[tuple[list[int], object]]:
        """Runs over ``work``, (key, that key's part) pairs; yields each call's positions in
        ``work`` and its answer."""
        groups = self._grouped(work, chunk)
        if not self._cluster:
            for positions in groups:
                yield positions, self._run(work, positions, args)
            return
        yield from zip(groups, self._pipelined(work, groups, args), strict=True)

    def _grouped(self, work: Sequence[tuple[str, object]], chunk: int) -> list[list[int]]:
        if not self._cluster:
            return [list(range(s, min(s + chunk, len(work)))) for s in range(0, len(work), chunk)]
        by_slot: dict[int, list[int]] = {}
        for position, (key, _) in enumerate(work):
            by_slot.setdefault(key_slot(key.encode()), []).append(position)
        return [
            positions[s : s + chunk]
            for positions in by_slot.values()
            for s in range(0, len(positions), chunk)
        ]

    def _run(self, work: Sequence, positions: list[int], args: Sequence) -> object:
        keys, parts = _keys_and_parts(work, positions)
        return self._script(keys=keys, args=[parts, *args])

    def _pipelined(self, work: Sequence, groups: list[list[int]], args: Sequence) -> list:
        for attempt in (1, 2):
            pipe = self._client.pipeline(transaction=False)
            for positions in groups:
                keys, parts = _keys_and_parts(work, positions)
                pipe.evalsha(self._script.sha, len(keys), *keys, parts, *args)
            try:
                return pipe.execute()
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                self._client.script_load(self._source)  # on every master
        raise AssertionError("unreachable")


def _keys_and_parts(work: Sequence, positions: list[int]) -> tuple[list[str], bytes]:
    return [work[positions[0]][0]], orjson.dumps([work[p] for p in positions])
