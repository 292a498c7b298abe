"""The stores on a three-master Redis Cluster: the feature job keeps there what it keeps on one
server, its keys spread over every node, and serving answers from it."""

import dataclasses

import grpc
import pytest
import redis

from streamrec.features.job import FeatureJob
from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.storage import (
    discard_key_namespace,
    open_event_bus,
    open_event_ledger,
    open_online_store,
)
from streamrec.infra.storage.ports.event_ledger import Claim
from streamrec.infra.storage.ports.online_store import HistoryEntry
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import RankingServer
from tests.engines.redis_cluster import HOST, RedisCluster
from tests.integration.conftest import namespaced
from tests.integration.offline_examples import committed_records
from tests.integration.test_serving_faults import USERS, seed

pytestmark = pytest.mark.cluster

EVENTS = generate(SyntheticSpec(users=60, items=50, events=1500, seed=23, days=4))


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory):
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).up()
    yield cluster
    cluster.down()


def _on(cluster, config):
    redis_settings = dataclasses.replace(config.redis, mode="cluster", url=cluster.url)
    return dataclasses.replace(config, redis=redis_settings)


def _streamed(config, spark):
    """The events, then a replay of their newest fifth: the reports of both runs."""
    bus = open_event_bus(config)
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        bus.ensure_topic(topic)
    publish(config, EVENTS, progress=False)
    first = FeatureJob(config, spark).run(until_idle=True)
    publish(config, sorted(EVENTS, key=lambda e: e.timestamp)[-len(EVENTS) // 5 :], progress=False)
    return first, FeatureJob(config, spark).run(until_idle=True)


def _totals(reports):
    return {n: sum(getattr(r, n) for r in reports) for n in ("accepted", "duplicates", "late")}


def test_the_feature_job_keeps_on_a_cluster_what_it_keeps_on_one_server(
    stack, spark, redis_cluster, tmp_path
):
    one = namespaced(stack, tmp_path / "one")
    spread = _on(redis_cluster, namespaced(stack, tmp_path / "spread"))
    expected = [_totals(reports) for reports in _streamed(one, spark)]
    assert [_totals(reports) for reports in _streamed(spread, spark)] == expected
    assert expected[1]["duplicates"] == len(EVENTS) // 5  # the replay was all refused

    assert committed_records(spread) == committed_records(one)
    users = sorted({e.user_id for e in EVENTS})
    here, there = open_online_store(one), open_online_store(spread)
    assert [there.recent_items(u, 50) for u in users] == [here.recent_items(u, 50) for u in users]
    spans = {u: (0, 2**62) for u in users}
    assert there.histories(spans, 5) == here.histories(spans, 5)
    for window in ("1h", "1d", "7d"):
        assert there.popular_items(window, 20) == here.popular_items(window, 20)
    frequencies = dict(here.item_frequencies().items)
    assert dict(there.item_frequencies().items) == pytest.approx(frequencies, rel=1e-12)

    prefix = spread.redis.key_prefix
    histories = redis_cluster.keys_per_node(f"{prefix}:user_history:*")
    claims = redis_cluster.keys_per_node(f"{prefix}:claims:*")
    assert all(histories) and all(claims), (histories, claims)  # every node holds some
    assert discard_key_namespace(spread) > 0
    assert redis_cluster.keys_per_node(f"{prefix}:*") == [0, 0, 0]


def test_a_node_that_forgot_the_scripts_is_given_them_again(stack, redis_cluster, tmp_path):
    config = _on(redis_cluster, namespaced(stack, tmp_path))
    store, ledger = open_online_store(config), open_event_ledger(config)
    entries = [(f"u{n}", HistoryEntry(1000 + n, f"e{n}", f"i{n % 7}", "view")) for n in range(90)]
    store.append_history(entries[:45])
    for port in redis_cluster.ports:  # as after a restart, or a replica's promotion
        redis.Redis(HOST, port).script_flush()
    store.append_history(entries[45:])
    claims = [Claim(f"e{n}", f"0:0:{n}", f"u{n}", 1000 + n) for n in range(90)]
    assert ledger.claim(claims) == [True] * 90
    assert ledger.claim([c._replace(claimant="1:0:0") for c in claims]) == [False] * 90
    assert [store.recent_items(f"u{n}", 5) for n in range(90)] == [[f"i{n % 7}"] for n in range(90)]


def test_serving_answers_from_the_cluster(trained, redis_cluster):
    base, _, result = trained
    config = _on(redis_cluster, base)
    config = dataclasses.replace(config, serving=dataclasses.replace(config.serving, port=0))
    seed(config)
    running = RankingServer(config, RetrievalModel(result.version))
    running.start()
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
            replies = [
                stub.Recommend(recommend_pb2.RecommendRequest(user_id=u, k=5), timeout=5)
                for u in USERS[:40]
            ]
    finally:
        running.stop(grace=0)
    assert {r.source for r in replies} == {recommend_pb2.SOURCE_MODEL}
    assert all(len(r.items) == 5 for r in replies)
    seen = open_online_store(config).recent_items(USERS[0], 10)
    assert len(seen) == 3 and not set(seen) & {i.item_id for i in replies[0].items}
