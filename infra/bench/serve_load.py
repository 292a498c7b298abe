"""The load generator of ``streamrec bench serve``, run in its own process.

``python -m streamrec.infra.bench.serve_load SPEC_JSON`` runs ``concurrency`` threads that call
back to back and prints one JSON line: for each of the spec's ``plans``, latency percentiles,
calls per second and what answered. A plan's ``call`` is ``check`` (the standard health Check:
the floor of a gRPC round trip to this server), ``recommend`` (over ``users`` in turn) or
``redis_get`` (a GET of one key: the floor of a Redis round trip).

The plans are interleaved: every thread switches plan at the same moments, every
``slice_seconds`` (0.25 s), until each plan has had ``seconds`` (after ``warmup_seconds`` not
counted), and each thread has one channel per target, as a backend instance would. So a path
and the floor it is compared with are measured under the same conditions: the same connections
carry both, served by the same server processes, and load from the machine's neighbours,
which comes and goes, falls on every plan alike. Measured one after the other
over new connections, cached Recommend against the bare Check of the same server varied from
0.56 to 0.76 in calls per second, run to run: SO_REUSEPORT gives each new connection to one of
the server's processes, and 8 connections landed 4/4 in some runs and 7/1 in others.

The first tenth of each slice (``settle_seconds``) is not counted: a server idle during the
other plans' slices answered its first call after the pause in up to 18 ms against a p99 of
7 ms (uncached, 1M items, concurrency 1), which continuous load never sees.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc

Call = Callable[[], str]


def summary(latencies: list[float], seconds: float) -> dict:
    """p50/p95/p99 in ms and calls per second."""
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    if not ordered:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "qps": 0.0, "calls": 0}
    return {"p50_ms": percentile(0.5), "p95_ms": percentile(0.95), "p99_ms": percentile(0.99),
            "qps": round(len(ordered) / seconds, 1), "calls": len(ordered)}  # fmt: skip


def run(spec: dict) -> dict:
    """Each plan's figures, by plan name."""
    names = list(spec["plans"])
    slice_seconds = min(spec.get("slice_seconds", 0.25), spec["seconds"])
    settle = spec.get("settle_seconds", 0.1 * slice_seconds)
    rounds = max(1, math.ceil(spec["seconds"] / slice_seconds - 1e-9))
    schedule = _Schedule(names, spec["warmup_seconds"], slice_seconds, rounds, settle)
    threads, records = [], []
    start = threading.Barrier(spec["concurrency"] + 1)
    for n in range(spec["concurrency"]):
        record: dict = {name: {"latencies": [], "answers": Counter()} for name in names}
        records.append(record)
        thread = threading.Thread(target=_client, args=(spec, n, schedule, start, record))
        threads.append(thread)
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()  # broken if a client failed before the start: reported below
    for thread in threads:
        thread.join()
    failed = [record["error"] for record in records if "error" in record]
    if failed:
        raise SystemExit(f"a load client failed: {failed[0]}")
    counted = rounds * (slice_seconds - settle)
    return {name: _figures([record[name] for record in records], counted)
            for name in names}  # fmt: skip


class _Schedule:
    """Which plan a call started at ``elapsed`` seconds belongs to: during the warm-up, every
    plan in turn; then one plan per slice, in turn, for ``rounds`` rounds, each slice counted
    after its first ``settle`` seconds; then none."""

    def __init__(
        self, names: list[str], warmup: float, slice_seconds: float, rounds: int, settle: float
    ) -> None:
        self.names = names
        self.settle = settle
        self.warmup = warmup
        self.slice_seconds = slice_seconds
        self.slices = rounds * len(names)

    def plan(self, elapsed: float, calls: int) -> tuple[str | None, bool]:
        """The plan's name (None when the run is over), and whether the call is measured."""
        if elapsed < self.warmup:
            return self.names[calls % len(self.names)], False
        index, offset = divmod(elapsed - self.warmup, self.slice_seconds)
        if index >= self.slices:
            return None, False
        return self.names[int(index) % len(self.names)], offset >= self.settle


def _figures(records: list[dict], seconds: float) -> dict:
    latencies = [value for record in records for value in record["latencies"]]
    answers = sum((record["answers"] for record in records), Counter())
    return summary(latencies, seconds) | {"answers": dict(answers)}


def _client(
    spec: dict, n: int, schedule: _Schedule, start: threading.Barrier, record: dict
) -> None:
    """Calls until the time is up; a failed call ends the run (the barrier wakes the rest)."""
    calls, closers = _callers(spec, n)
    try:
        for call in calls.values():
            call()  # connect before the clock starts
        start.wait()
        began, count = time.perf_counter(), 0
        while True:
            now = time.perf_counter()
            name, measured = schedule.plan(now - began, count)
            if name is None:
                return
            answer = calls[name]()
            count += 1
            if measured:
                record[name]["latencies"].append(time.perf_counter() - now)
                record[name]["answers"][answer] += 1
    except threading.BrokenBarrierError:
        return  # another client failed before the start: run() reports its error
    except Exception as exc:
        record["error"] = repr(exc)[:300]
        start.abort()
    finally:
        for close in closers:
            close()


def _callers(spec: dict, n: int) -> tuple[dict[str, Call], list[Callable[[], None]]]:
    """Each plan's call, with one channel (or Redis connection) per target for all of them."""
    channels: dict[str, grpc.Channel] = {}
    redis_clients: dict[str, redis.Redis] = {}
    calls = {}
    for name, plan in spec["plans"].items():
        if plan["call"] == "redis_get":
            url = plan["redis_url"]
            if url not in redis_clients:
                redis_clients[url] = redis.Redis.from_url(url)
            calls[name] = _redis_get(redis_clients[url], plan["redis_key"])
            continue
        target = plan["target"]
        if target not in channels:
            # Channels to one target share a connection unless told not to, and separate
            # backend instances would not share one.
            options = [("grpc.use_local_subchannel_pool", 1)]
            channels[target] = grpc.insecure_channel(target, options=options)
        if plan["call"] == "check":
            calls[name] = _check(channels[target])
        else:
            calls[name] = _recommend(channels[target], spec["users"], spec["k"], n)
    closers = [channel.close for channel in channels.values()]
    return calls, closers + [client.close for client in redis_clients.values()]


def _redis_get(client: redis.Redis, key: str) -> Call:
    return lambda: "hit" if client.get(key) else "miss"


def _check(channel: grpc.Channel) -> Call:
    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()
    return lambda: str(health.Check(request, timeout=10).status)


def _recommend(channel: grpc.Channel, users: list[str], k: int, n: int) -> Call:
    stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
    turn = [n * 7919]

    def recommend() -> str:
        turn[0] += 1
        request = recommend_pb2.RecommendRequest(user_id=users[turn[0] % len(users)], k=k)
        reply = stub.Recommend(request, timeout=10)
        return recommend_pb2.Source.Name(reply.source).removeprefix("SOURCE_").lower()

    return recommend


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
