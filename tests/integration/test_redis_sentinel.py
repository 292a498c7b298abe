"""Serving and the stores through Redis Sentinel, with the master killed under load, and the
feature job waiting for the replica before it commits offsets.

Nothing is configured but the Sentinels' addresses: after the failover, the clients find the
promoted replica by asking them, and serving's fallback answers while no master answers.
"""

import dataclasses
import signal
import time

import pytest
import redis

from streamrec.features.job import FeatureJob
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage import open_event_bus, open_online_store
from streamrec.infra.storage.adapters.redis_connection import RedisEndpoint, redis_client
from streamrec.infra.storage.adapters.redis_keys import RedisKeys
from streamrec.infra.storage.ports.online_store import HistoryEntry
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import RankingServer
from tests.engines.redis_sentinel import MASTER_NAME, RedisSentinel
from tests.integration.conftest import namespaced
from tests.integration.test_serving_faults import USERS, Load, seed

pytestmark = pytest.mark.cluster


@pytest.fixture
def sentinel(tmp_path):
    setup = RedisSentinel(tmp_path / "sentinel").up()
    yield setup
    setup.down()


def _through(config, sentinel):
    redis = dataclasses.replace(
        config.redis, mode="sentinel", url=sentinel.url, sentinel_master=MASTER_NAME
    )
    serving = dataclasses.replace(config.serving, port=0, catalog_refresh_seconds=0.5)
    return dataclasses.replace(config, redis=redis, serving=serving)


def _append_within(store, entries, seconds: float) -> float:
    """Appends, retrying as the feature job retries a batch; the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            store.append_history(entries)
            return time.monotonic() - started
        except StoreUnavailable:
            if time.monotonic() - started > seconds:
                raise
            time.sleep(0.2)


def test_a_killed_master_fails_no_recommend_and_its_successor_takes_the_writes(trained, sentinel):
    base, _, result = trained
    config = _through(base, sentinel)
    seed(config)
    client = redis_client(RedisEndpoint.of(config, "online_store"))
    assert client.wait(1, 5000) == 1  # the replica has the histories before the master dies
    running = RankingServer(config, RetrievalModel(result.version))
    running.start()
    try:
        with Load(running.address) as load:
            time.sleep(1.0)
            t0 = time.monotonic()
            time.sleep(2.0)
            old = sentinel.kill_master()
            t1 = time.monotonic()
            new = sentinel.wait_for_new_master(old)
            store = open_online_store(config)
            late = (USERS[0], HistoryEntry(5000, "after-failover", "i-000077", "view"))
            _append_within(store, [late], seconds=15)
            time.sleep(3.0)
            t2 = time.monotonic()
    finally:
        running.stop(grace=0)
    before, during = load.between(t0, t1), load.between(t1, t2)
    print(f"\nmaster {old} -> {new}\nbefore {dict(before)}\nafter the kill {dict(during)}")
    failed = {key: n for key, n in (before + during).items() if key[0] != "OK"}
    assert failed == {}, f"before {before}, after the kill {during}"
    last = load.between(t2 - 1.0, t2)  # answered from the new master again
    assert last[("OK", "fallback:online_store_unavailable")] == 0, last
    assert last[("OK", "cache")] + last[("OK", "model")] > 0, last
    assert store.recent_items(USERS[0], 4)[0] == "i-000077"  # the write reached the new master
    assert len(store.recent_items(USERS[1], 10)) == 3  # the replica had every history


def test_with_min_replica_acks_offsets_commit_only_once_the_replica_has_the_batch(
    stack, spark, sentinel, tmp_path
):
    base = _through(namespaced(stack, tmp_path), sentinel)
    config = dataclasses.replace(
        base,
        redis=dataclasses.replace(base.redis, min_replica_acks=1, replica_timeout_ms=300),
        features=dataclasses.replace(base.features, outage_budget_seconds=0),
    )
    events = generate(SyntheticSpec(users=20, items=30, events=300, seed=5))
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        open_event_bus(config).ensure_topic(topic)
    publish(config, events, progress=False)
    group, topic = config.features.consumer_group, config.kafka.events_topic

    replica = sentinel.replica_port()
    sentinel.signal(replica, signal.SIGSTOP)  # a replica that cannot keep up
    try:
        with pytest.raises(Exception, match=r"0 of 1 replicas had its writes after 300 ms"):
            FeatureJob(config, spark).run(until_idle=True)
        assert not any(open_event_bus(config).committed_offsets(group, topic).values())
    finally:
        sentinel.signal(replica, signal.SIGCONT)

    reports = FeatureJob(config, spark).run(until_idle=True)  # the same batch, now committed
    assert sum(r.accepted for r in reports) == len(events)
    assert sum(open_event_bus(config).committed_offsets(group, topic).values()) == len(events)
    newest = max(events, key=lambda e: e.timestamp)
    key = RedisKeys(config.redis.key_prefix, cluster=False).history(newest.user_id)
    assert redis.Redis("127.0.0.1", replica).zcard(key) > 0  # the replica has the histories
