"""The ranking service over real gRPC, with real Redis and a model trained on planted data."""

import dataclasses
import signal
import subprocess
import sys
import time

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.contracts.items import Item
from streamrec.infra.devstack.stack import LocalStack
from streamrec.infra.storage import open_online_store
from streamrec.infra.storage.ports.online_store import HistoryEntry, ItemEvent
from streamrec.ingest.synthetic import SyntheticSpec, deal_items, generate_items, item_id
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import SERVICE_NAME, RankingServer
from tests.conftest import free_port
from tests.integration.conftest import TRAINING_EVENTS_SPEC

POPULAR = (30, 20, 10)  # items i-000030, i-000020, i-000010, with that many events each


def _serving_config(config, **serving):
    return dataclasses.replace(
        config, serving=dataclasses.replace(config.serving, port=0, **serving)
    )


@pytest.fixture(scope="module")
def server(trained):
    """The trained model served over its own Redis keys, with a catalog and popularity."""
    config, _, result = trained
    config = dataclasses.replace(
        _serving_config(config, max_k=50, catalog_refresh_seconds=0, metrics_port=free_port()),
        redis=dataclasses.replace(config.redis, key_prefix="test-serving"),
        result_cache=dataclasses.replace(config.result_cache, ttl_seconds=30),
    )
    store = open_online_store(config)
    store.put_items(generate_items(SyntheticSpec(**TRAINING_EVENTS_SPEC)))
    store.add_item_events(
        "seed", [ItemEvent(f"i-{n:06d}", 1000) for n in POPULAR for _ in range(n)]
    )
    store.advance_item_windows(1000)
    running = RankingServer(config, RetrievalModel(result.version))
    running.start()
    yield config, running
    running.stop(grace=1)


@pytest.fixture(scope="module")
def stub(server):
    _, running = server
    with grpc.insecure_channel(running.address) as channel:
        yield recommend_pb2_grpc.RecommendationServiceStub(channel), channel


def _recommend(stub, user, k, **fields):
    request = recommend_pb2.RecommendRequest(user_id=user, k=k, **fields)
    return stub[0].Recommend(request, timeout=10)


def _items(reply):
    return [item.item_id for item in reply.items]


def _add_history(config, user, *items):
    store = open_online_store(config)
    start = len(store.recent_history(user, 100))
    store.append_history(
        [(user, HistoryEntry(1000 + start + n, f"{user}-{start + n}", item, "view"))
         for n, item in enumerate(items)]
    )  # fmt: skip


def test_recommend_returns_k_items_best_first_with_version_source_and_request_id(server, stub):
    config, _ = server
    _add_history(config, "u-000003", "i-000001")
    first = _recommend(stub, "u-000003", 7, request_id="caller-42")
    second = _recommend(stub, "u-000003", 7)
    assert len(first.items) == 7
    scores = [item.score for item in first.items]
    assert scores == sorted(scores, reverse=True)
    assert len(set(_items(first))) == 7
    assert first.model_version == 1
    assert first.source == recommend_pb2.SOURCE_MODEL and not first.fallback_reason
    assert first.request_id == "caller-42"
    assert second.request_id and second.request_id != first.request_id


def test_a_new_event_changes_the_next_answer_and_the_cache_never_serves_an_older_history(
    server, stub
):
    config, _ = server
    _add_history(config, "u-000010", "i-000005")
    first = _recommend(stub, "u-000010", 5)
    again = _recommend(stub, "u-000010", 5)
    assert (first.source, again.source) == (recommend_pb2.SOURCE_MODEL, recommend_pb2.SOURCE_CACHE)
    assert again.from_cache and _items(again) == _items(first)
    clicked = _items(first)[0]  # the user takes the top recommendation
    _add_history(config, "u-000010", clicked)
    fresh = _recommend(stub, "u-000010", 5)
    assert fresh.source == recommend_pb2.SOURCE_MODEL
    assert clicked not in _items(fresh)  # seen now
    before = {item.item_id: item.score for item in first.items}
    moved = [abs(i.score - before[i.item_id]) for i in fresh.items if i.item_id in before]
    # The query tower read the new history: the items both lists hold scored differently, or
    # the lists hold none in common.
    assert max(moved, default=1.0) > 1e-4
    client = redis.Redis.from_url(config.redis_url)
    keys = client.keys(f"{config.redis.key_prefix}:results:v1:u-000010:*")
    assert len(keys) == 2 and all(0 < client.ttl(key) <= 30 for key in keys)


def test_the_requests_context_changes_what_the_model_ranks_first(server, stub):
    """The planted deals surface (synthetic signal 5): asked from there, a promoted item."""
    config, _ = server
    deals = set(deal_items(SyntheticSpec(**TRAINING_EVENTS_SPEC)))
    others = [item_id(n) for n in range(3, 120, 7) if item_id(n) not in deals][:3]
    _add_history(config, "u-000040", *others)
    on_deals = {"surface": "deals", "device": "web"}
    asked = _items(_recommend(stub, "u-000040", 3, context=on_deals))
    at_home = _items(_recommend(stub, "u-000040", 3, context={"surface": "home"}))
    assert asked[0] in deals and at_home != asked
    candidates = [*others[:1], *sorted(deals)]
    request = recommend_pb2.RankRequest(
        user_id="u-000040", candidate_item_ids=candidates, context=on_deals
    )
    assert _items(stub[0].Rank(request, timeout=10))[0] == asked[0]


def test_seen_items_exclusions_categories_and_unavailable_items_are_never_returned(server, stub):
    config, _ = server
    seen = [f"i-{n:06d}" for n in range(40, 60)]
    _add_history(config, "u-000020", *seen)
    store = open_online_store(config)
    unfiltered = _items(_recommend(stub, "u-000020", 10))
    assert not set(unfiltered) & set(seen)
    store.put_items([Item(unfiltered[0], ("group-0000",), available=False)])
    group = sorted(store.items_in_categories(["group-0001"]))
    reply = _recommend(
        stub, "u-000020", 5, exclude_item_ids=[unfiltered[1]], include_categories=["group-0001"]
    )
    assert len(reply.items) == min(5, len(set(group) - set(seen)))
    assert set(_items(reply)) <= set(group) - set(seen) - {unfiltered[1]}
    everything = _items(_recommend(stub, "u-000020", 50))
    assert unfiltered[0] not in everything and len(everything) == 50


def test_a_user_without_history_gets_popular_items_as_a_fallback(stub):
    reply = _recommend(stub, "never-seen-anywhere", 4)
    assert reply.source == recommend_pb2.SOURCE_FALLBACK
    assert reply.fallback_reason == "no_history"
    assert _items(reply)[:3] == [f"i-{n:06d}" for n in POPULAR]
    assert [item.score for item in reply.items][:3] == [30.0, 20.0, 10.0]
    assert len(reply.items) == 4


def test_rank_scores_candidates_with_the_model_and_reports_unknown_ones(server, stub):
    config, _ = server
    _add_history(config, "u-000030", "i-000003")
    top = _items(_recommend(stub, "u-000030", 3))
    candidates = ["no-such-item", top[2], "i-000119", top[0], top[1]]
    reply = stub[0].Rank(
        recommend_pb2.RankRequest(user_id="u-000030", candidate_item_ids=candidates), timeout=10
    )
    assert _items(reply)[:3] == top
    assert _items(reply)[-1] == "no-such-item"
    assert list(reply.unknown_item_ids) == ["no-such-item"]
    assert reply.source == recommend_pb2.SOURCE_MODEL and reply.model_version == 1


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"user_id": "", "k": 5}, "user_id must be a non-empty string"),
        ({"user_id": "u", "k": 0}, "k must be between 1 and 50"),
        ({"user_id": "u", "k": 51}, "got 51"),
        ({"user_id": "x" * 300, "k": 5}, "longer than 256"),
        ({"user_id": "u", "k": 5, "exclude_item_ids": ["ok", " "]}, "exclude_item_ids: ' '"),
        ({"user_id": "u", "k": 5, "exclude_item_ids": ["i"] * 1001}, "at most 1000"),
        ({"user_id": "u", "k": 5, "include_categories": ["c" * 300]}, "include_categories"),
        ({"user_id": "u", "k": 5, "context": {"": "x"}}, "context"),
        ({"user_id": "u", "k": 5, "context": {str(n): "x" for n in range(33)}}, "33 entries"),
        ({"user_id": "u", "k": 5, "request_id": "r" * 129}, "request_id"),
    ],
)
def test_bad_requests_get_invalid_argument(stub, fields, detail):
    with pytest.raises(grpc.RpcError) as error:
        stub[0].Recommend(recommend_pb2.RecommendRequest(**fields), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in error.value.details()


@pytest.mark.parametrize(
    ("candidates", "detail"),
    [([], "at least one item"), (["i"] * 1001, "at most 1000"), (["x" * 257], "256")],
)
def test_bad_rank_requests_get_invalid_argument(stub, candidates, detail):
    with pytest.raises(grpc.RpcError) as error:
        request = recommend_pb2.RankRequest(user_id="u", candidate_item_ids=candidates)
        stub[0].Rank(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in error.value.details()


def test_health_and_reflection_describe_the_service(stub):
    health = health_pb2_grpc.HealthStub(stub[1])
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(stub[1])
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = reflection.ServerReflectionInfo(iter([request]), timeout=5)
    assert SERVICE_NAME in {s.name for s in answer.list_services_response.service}


def test_with_redis_stopped_the_server_falls_back_then_recovers_by_itself(trained, tmp_path):
    """A private Redis, stopped and started again under a running server."""
    config, _, result = trained
    own = dataclasses.replace(
        _serving_config(config, catalog_refresh_seconds=0),
        stack=dataclasses.replace(
            config.stack, state_dir=str(tmp_path / "stack"), redis_port=free_port()
        ),
        kafka=dataclasses.replace(config.kafka, bootstrap=config.kafka_bootstrap),
        redis=dataclasses.replace(config.redis, url="", breaker_open_seconds=0.2),
    )
    redis_only = LocalStack(own)
    assert redis_only.up() == ["redis"]
    running = RankingServer(own, RetrievalModel(result.version))
    try:
        store = open_online_store(own)
        store.add_item_events("seed", [ItemEvent("i-000030", 1000)])
        store.advance_item_windows(1000)
        _add_history(own, "known", "i-000003")
        running.start()
        with grpc.insecure_channel(running.address) as channel:
            stub = (recommend_pb2_grpc.RecommendationServiceStub(channel), channel)
            before = _recommend(stub, "known", 5)
            assert before.source == recommend_pb2.SOURCE_MODEL
            assert redis_only.down(only=["redis"]) == ["redis"]
            known = _recommend(stub, "known", 5)
            assert known.source == recommend_pb2.SOURCE_FALLBACK
            assert known.fallback_reason == "online_store_unavailable"
            assert _items(known) == _items(before)  # the history this server last read
            stranger = _recommend(stub, "stranger", 3)
            assert (stranger.source, _items(stranger)[0]) == (
                recommend_pb2.SOURCE_FALLBACK,
                "i-000030",  # the popular items it read at start
            )
            with pytest.raises(grpc.RpcError) as error:
                _recommend(stub, "stranger", 3, include_categories=["group-0001"])
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "category filters" in error.value.details()
            redis_only.up()
            _add_history(own, "known", "i-000003")
            time.sleep(0.3)  # past breaker_open_seconds
            # Fresh from the store again: the same history as before, so the near cache may
            # answer it, since it survives a Redis restart.
            recovered = _recommend(stub, "known", 5)
            assert recovered.source in (recommend_pb2.SOURCE_MODEL, recommend_pb2.SOURCE_CACHE)
            assert _items(recovered) == _items(before)
    finally:
        running.stop(grace=0)
        redis_only.down()


def test_online_store_down_from_the_start_is_unavailable_for_a_user_without_history(trained):
    config, _, result = trained
    dead = dataclasses.replace(
        _serving_config(config),
        redis=dataclasses.replace(config.redis, url=f"redis://127.0.0.1:{free_port()}/0"),
    )
    running = RankingServer(dead, RetrievalModel(result.version))
    running.start()
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
            with pytest.raises(grpc.RpcError) as error:
                stub.Recommend(recommend_pb2.RecommendRequest(user_id="u-000001", k=3), timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "no history and no popular items in memory" in error.value.details()
        assert "Redis at redis://127.0.0.1:" in error.value.details()
    finally:
        running.stop(grace=0)


@pytest.mark.slow
def test_serve_and_recommend_commands_as_separate_processes(trained, run_cli):
    config, _, _ = trained
    port = free_port()
    env = run_cli.env(
        dataclasses.replace(config, serving=dataclasses.replace(config.serving, port=port))
    )
    server = run_cli.start(None, "serve", env=env, stderr=subprocess.DEVNULL)
    try:
        banner = server.stdout.readline()  # printed once the server accepts requests
        assert banner.startswith("serving model version ") and banner.strip().endswith(
            f"127.0.0.1:{port}"
        )
        command = ["recommend", "u-000001"]
        result = run_cli.run(
            None, *command, "--k", "3", "--context", "device=web,surface=home", env=env
        )
        assert result.returncode == 0, result.stderr
        refused = run_cli.run(None, *command, "--context", "surface", env=env)
        assert refused.returncode == 2 and "expected KEY=VALUE pairs" in refused.stderr
        lines = result.stdout.strip().splitlines()
        assert lines[0].startswith("model version ")
        assert [line.split()[0] for line in lines[1:]] == ["1.", "2.", "3."]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert "stopped" in server.stdout.read()


def test_result_cache_type_none_turns_caching_off(server):
    config, _ = server
    config = dataclasses.replace(
        config,
        result_cache=dataclasses.replace(config.result_cache, type="none"),
        serving=dataclasses.replace(config.serving, metrics_port=0),
    )
    _add_history(config, "u-000011", "i-000009")
    running = RankingServer(config, RetrievalModel(_version(config)))
    running.start()
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = (recommend_pb2_grpc.RecommendationServiceStub(channel), channel)
            replies = [_recommend(stub, "u-000011", 4) for _ in range(2)]
        assert [reply.source for reply in replies] == [recommend_pb2.SOURCE_MODEL] * 2
        assert replies[0].items == replies[1].items
    finally:
        running.stop(grace=0)


def _version(config):
    from streamrec.infra.storage import open_model_registry

    return open_model_registry(config).current()


def test_the_api_server_computes_each_request_on_its_own_thread():
    """Its query tower is many small ops and its matrix products are small: thread pools only
    make concurrent requests contend."""
    script = (
        "import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'; import tensorflow as tf; "
        "import faiss; from threadpoolctl import threadpool_info; "
        "from streamrec.infra.core.config import ServingConfig; "
        "from streamrec.serving.server import _compute_threads; "
        "_compute_threads(ServingConfig()); "
        "print(tf.config.threading.get_inter_op_parallelism_threads(), "
        "tf.config.threading.get_intra_op_parallelism_threads(), faiss.omp_get_max_threads(), "
        "*sorted({pool['num_threads'] for pool in threadpool_info()}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["1", "1", "1", "1"], result.stderr[-2000:]


def test_exploration_slots_are_off_by_default_and_flagged_when_on(server, stub):
    config, _ = server
    _add_history(config, "u-000050", "i-000004", "i-000005")
    assert not any(item.explored for item in _recommend(stub, "u-000050", 10).items)
    exploring = dataclasses.replace(
        config, serving=dataclasses.replace(config.serving, metrics_port=0, exploration_share=0.2)
    )
    running = RankingServer(exploring, RetrievalModel(_version(config)))
    running.start()
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = (recommend_pb2_grpc.RecommendationServiceStub(channel), channel)
            reply = _recommend(stub, "u-000050", 10)
    finally:
        running.stop(grace=0)
    explored = [item.item_id for item in reply.items if item.explored]
    assert len(reply.items) == 10 and len(explored) == 2
    assert not {"i-000004", "i-000005"} & set(_items(reply))  # seen items stay out
