"""Fault drills on the ranking service: the real redis-server frozen and killed under load.

Load is four client threads calling Recommend back to back with a 2 s deadline, as an app
backend would; every call is counted by its status code and answer source. One call in four is
for a user the server has never seen, so the load keeps needing Redis: the histories it has
read it keeps until Redis says they changed, which a frozen Redis never does.
"""

import dataclasses
import os
import signal
import threading
import time
from collections import Counter

import grpc
import pytest

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.devstack.stack import LocalStack
from streamrec.infra.storage import open_online_store
from streamrec.infra.storage.ports.online_store import HistoryEntry, ItemEvent
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import RankingServer
from tests.conftest import free_port

pytestmark = pytest.mark.slow  # load while Redis is frozen

USERS = [f"drill-{n:03d}" for n in range(200)]
SOURCES = {recommend_pb2.SOURCE_MODEL: "model", recommend_pb2.SOURCE_CACHE: "cache",
           recommend_pb2.SOURCE_FALLBACK: "fallback"}  # fmt: skip


@pytest.fixture
def private_redis(trained, tmp_path):
    """The trained model's config over a Redis of its own, which the test may stop or kill."""
    config, _, result = trained
    own = dataclasses.replace(
        config,
        serving=dataclasses.replace(config.serving, port=0, catalog_refresh_seconds=0.5),
        stack=dataclasses.replace(
            config.stack, state_dir=str(tmp_path / "stack"), redis_port=free_port()
        ),
        kafka=dataclasses.replace(config.kafka, bootstrap=config.kafka_bootstrap),
        redis=dataclasses.replace(config.redis, url=""),
    )
    redis_only = LocalStack(own)
    assert redis_only.up() == ["redis"]
    seed(own)
    yield own, redis_only, result.version
    redis_only.down()


def seed(config):
    """Popular items, and three events of history for each of ``USERS``."""
    store = open_online_store(config)
    store.add_item_events("seed", [ItemEvent(f"i-{n:06d}", 1000) for n in range(1, 40)])
    store.advance_item_windows(1000)
    store.append_history(
        (user, HistoryEntry(1000 + n, f"{user}-{n}", f"i-{(u * 7 + n) % 90 + 1:06d}", "view"))
        for u, user in enumerate(USERS)
        for n in range(3)
    )


class Load:
    """Threads calling Recommend until stopped; each call's end time, code and source."""

    def __init__(self, address: str, threads: int = 4) -> None:
        self.calls: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(address, n)) for n in range(threads)
        ]

    def _run(self, address: str, offset: int) -> None:
        with grpc.insecure_channel(address) as channel:
            stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
            n = offset
            while not self._stop.is_set():
                user = USERS[n % len(USERS)] if n % 4 else f"new-{offset}-{n}"
                request = recommend_pb2.RecommendRequest(user_id=user, k=5)
                n += 1
                try:
                    reply = stub.Recommend(request, timeout=2.0)
                    source = SOURCES[reply.source]
                    if reply.fallback_reason:
                        source += f":{reply.fallback_reason}"
                    self.calls.append((time.monotonic(), "OK", source))
                except grpc.RpcError as error:
                    self.calls.append((time.monotonic(), error.code().name, ""))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def between(self, start: float, end: float) -> Counter:
        return Counter((code, source) for t, code, source in self.calls if start <= t < end)


def _pid(stack: LocalStack, name: str) -> int:
    (pid,) = [s.pid for s in stack.status() if s.name == name]
    assert pid is not None
    return pid


def test_a_frozen_redis_looks_like_a_redis_that_is_down_and_fails_no_request(private_redis):
    config, redis_only, version = private_redis
    running = RankingServer(config, RetrievalModel(version))
    running.start()
    pid = _pid(redis_only, "redis")
    try:
        with Load(running.address) as load:
            time.sleep(1.0)  # every user read once: the server remembers their history
            t0 = time.monotonic()
            time.sleep(3.0)
            t1 = time.monotonic()
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(4.0)
            finally:
                t2 = time.monotonic()
                os.kill(pid, signal.SIGCONT)
            time.sleep(3.0)
            t3 = time.monotonic()
    finally:
        running.stop(grace=0)
    before, frozen, after = load.between(t0, t1), load.between(t1, t2), load.between(t2, t3)
    print(f"\nbefore {dict(before)}\nfrozen {dict(frozen)}\nafter {dict(after)}")
    failed = {key: n for key, n in (before + frozen + after).items() if key[0] != "OK"}
    assert failed == {}, f"before {before}, frozen {frozen}, after {after}"
    assert frozen[("OK", "fallback:online_store_unavailable")] > 0
    rate_before, rate_frozen = sum(before.values()) / (t1 - t0), sum(frozen.values()) / (t2 - t1)
    assert rate_frozen >= 0.5 * rate_before, (rate_before, rate_frozen, frozen)
    # Recovered by itself: the last second is answered from the store again.
    last = load.between(t3 - 1.0, t3)
    assert last[("OK", "fallback:online_store_unavailable")] == 0, last
    assert last[("OK", "fallback:no_history")] > 0 and last[("OK", "cache")] > 0, last
