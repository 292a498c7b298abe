"""The load generator of ``streamrec bench serve``, run in its own process.

``python -m streamrec.infra.cli.serve_load SPEC_JSON`` runs ``concurrency`` threads that call
back to back for ``seconds`` (after ``warmup_seconds`` not counted), each thread with its own
channel as separate backend instances would have, and prints one JSON line: latency
percentiles, calls per second and what answered. ``call`` is ``check`` (the standard health
Check: the floor of a gRPC round trip to this server), ``recommend`` (over ``users`` in turn)
or ``redis_get`` (a GET of one key: the floor of a Redis round trip).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc


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
    threads, results = [], []
    start = threading.Barrier(spec["concurrency"] + 1)
    for n in range(spec["concurrency"]):
        record: dict = {"latencies": [], "answers": Counter()}
        results.append(record)
        threads.append(threading.Thread(target=_client, args=(spec, n, start, record)))
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()  # broken if a client failed before the start: reported below
    for thread in threads:
        thread.join()
    failed = [record["error"] for record in results if "error" in record]
    if failed:
        raise SystemExit(f"a load client failed: {failed[0]}")
    latencies = [value for record in results for value in record["latencies"]]
    answers = sum((record["answers"] for record in results), Counter())
    return summary(latencies, spec["seconds"]) | {"answers": dict(answers)}


def _client(spec: dict, n: int, start: threading.Barrier, record: dict) -> None:
    """Calls until the time is up; a failed call ends the run (the barrier wakes the rest)."""
    call, close = _caller(spec, n)
    try:
        call()  # connect before the clock starts
        start.wait()
        began = time.perf_counter()
        warm_until, stop_at = began + spec["warmup_seconds"], began + spec["warmup_seconds"]
        stop_at += spec["seconds"]
        while (now := time.perf_counter()) < stop_at:
            answer = call()
            if now >= warm_until:
                record["latencies"].append(time.perf_counter() - now)
                record["answers"][answer] += 1
    except threading.BrokenBarrierError:
        return  # another client failed before the start: run() reports its error
    except Exception as exc:
        record["error"] = repr(exc)[:300]
        start.abort()
    finally:
        close()


def _caller(spec: dict, n: int) -> tuple[Callable[[], str], Callable[[], None]]:
    if spec["call"] == "redis_get":
        client = redis.Redis.from_url(spec["redis_url"])
        return (lambda: "hit" if client.get(spec["redis_key"]) else "miss"), client.close
    # Channels to one target share a connection unless told not to, and separate backend
    # instances would not share one.
    channel = grpc.insecure_channel(spec["target"], options=[("grpc.use_local_subchannel_pool", 1)])
    if spec["call"] == "check":
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest()
        return (lambda: str(health.Check(request, timeout=10).status)), channel.close
    stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
    users, turn = spec["users"], [n * 7919]

    def recommend() -> str:
        turn[0] += 1
        request = recommend_pb2.RecommendRequest(user_id=users[turn[0] % len(users)], k=spec["k"])
        reply = stub.Recommend(request, timeout=10)
        return recommend_pb2.Source.Name(reply.source).removeprefix("SOURCE_").lower()

    return recommend, channel.close


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
