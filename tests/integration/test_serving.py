"""The ranking service over real gRPC, with real Redis and a model trained on planted data."""

import dataclasses
import os
import signal
import subprocess
import sys

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamrec.infra.config import render_toml
from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.ports.online_store import HistoryEntry
from streamrec.infra.stores import open_online_store
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import SERVICE_NAME, RankingServer
from tests.conftest import free_port


def _serving_config(config, **serving):
    return dataclasses.replace(
        config, serving=dataclasses.replace(config.serving, port=0, **serving)
    )


@pytest.fixture(scope="module")
def server(trained):
    config, _, result = trained
    config = dataclasses.replace(
        _serving_config(config, max_k=50),
        result_cache=dataclasses.replace(config.result_cache, ttl_seconds=30),
    )
    running = RankingServer(config, RetrievalModel(result.version))
    running.start()
    yield config, running
    running.stop(grace=1)


@pytest.fixture(scope="module")
def stub(server):
    _, running = server
    with grpc.insecure_channel(running.address) as channel:
        yield recommend_pb2_grpc.RecommendationServiceStub(channel), channel


def _recommend(stub, user, k):
    return stub[0].Recommend(recommend_pb2.RecommendRequest(user_id=user, k=k), timeout=10)


def test_recommend_returns_k_items_best_first_with_version_and_request_id(stub):
    first = _recommend(stub, "u-000003", 7)
    second = _recommend(stub, "u-000004", 7)
    assert len(first.items) == 7
    scores = [item.score for item in first.items]
    assert scores == sorted(scores, reverse=True)
    assert len({item.item_id for item in first.items}) == 7
    assert first.model_version == 1
    assert first.request_id and first.request_id != second.request_id


def test_history_in_the_online_store_drives_the_ranking(server, stub, trained):
    config, _, _ = trained
    open_online_store(config).append_history(
        [
            ("fresh-user", HistoryEntry(1, "h1", "i-000005")),
            ("fresh-user", HistoryEntry(2, "h2", "i-000006")),
        ]
    )
    with_history = [i.item_id for i in _recommend(stub, "fresh-user", 10).items]
    without = [i.item_id for i in _recommend(stub, "other-fresh-user", 10).items]
    assert with_history != without


def test_results_are_cached_per_model_version_with_a_ttl(server, stub):
    config, _ = server
    first = _recommend(stub, "u-000010", 5)
    again = _recommend(stub, "u-000010", 5)
    assert not first.from_cache and again.from_cache
    assert [i.item_id for i in again.items] == [i.item_id for i in first.items]
    assert not _recommend(stub, "u-000010", 6).from_cache  # another k is another entry
    client = redis.Redis.from_url(config.redis_url)
    ttl = client.ttl(f"{config.redis.key_prefix}:results:v1:5:u-000010")
    assert 0 < ttl <= 30


def test_unknown_users_get_recommendations(stub):
    assert len(_recommend(stub, "never-seen-anywhere", 3).items) == 3


@pytest.mark.parametrize(
    ("user", "k", "detail"),
    [
        ("", 5, "user_id must be a non-empty string"),
        ("u", 0, "k must be between 1 and 50"),
        ("u", 51, "got 51"),
        ("x" * 300, 5, "longer than 256"),
    ],
)
def test_bad_requests_get_invalid_argument(stub, user, k, detail):
    with pytest.raises(grpc.RpcError) as error:
        _recommend(stub, user, k)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in error.value.details()


def test_health_reports_serving_for_the_server_and_the_service(stub):
    health = health_pb2_grpc.HealthStub(stub[1])
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_online_store_down_is_unavailable(trained):
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
        assert "online store (Redis at redis://127.0.0.1:" in error.value.details()
    finally:
        running.stop(grace=0)


def test_serve_and_recommend_commands_as_separate_processes(trained, tmp_path):
    config, _, _ = trained
    port = free_port()
    config_file = tmp_path / "serve.toml"
    config_file.write_text(
        render_toml(
            dataclasses.replace(config, serving=dataclasses.replace(config.serving, port=port))
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")} | {
        "STREAMREC_CONFIG": str(config_file)
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "streamrec.infra.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = server.stdout.readline()  # printed once the server accepts requests
        assert banner.startswith("serving model version ") and banner.strip().endswith(
            f"127.0.0.1:{port}"
        )
        result = subprocess.run(
            [sys.executable, "-m", "streamrec.infra.cli", "recommend", "u-000001", "--k", "3"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert lines[0].startswith("model version ")
        assert [line.split()[0] for line in lines[1:]] == ["1.", "2.", "3."]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert "stopped" in server.stdout.read()


def test_result_cache_type_none_turns_caching_off(trained):
    config, _, result = trained
    config = dataclasses.replace(
        _serving_config(config),
        result_cache=dataclasses.replace(config.result_cache, type="none"),
    )
    running = RankingServer(config, RetrievalModel(result.version))
    running.start()
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = (recommend_pb2_grpc.RecommendationServiceStub(channel), channel)
            replies = [_recommend(stub, "u-000011", 4) for _ in range(2)]
        assert not any(reply.from_cache for reply in replies)
        assert replies[0].items == replies[1].items
    finally:
        running.stop(grace=0)
