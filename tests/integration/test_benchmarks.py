"""The benchmarks as an operator runs them: real services, and a JSON last line with the
figures the issues name, each beside its baseline from the same run."""

import json
import os
import subprocess
import sys

import redis
from kafka import KafkaAdminClient


def _bench(stack, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env |= {
        "STREAMREC_STACK_STATE_DIR": str(stack.state_dir),
        "STREAMREC_STACK_KAFKA_PORT": str(stack.stack.kafka_port),
        "STREAMREC_STACK_REDIS_PORT": str(stack.stack.redis_port),
    }
    result = subprocess.run(
        [sys.executable, "-m", "streamrec.infra.cli", "bench", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ingest_benchmark_reports_each_rate_beside_raw_kafka(stack):
    figures = _bench(
        stack, "ingest", "--events", "3000", "--latency-seconds", "3", "--latency-rate", "200",
        "--order", "user",
    )  # fmt: skip
    assert figures["events"] == 3000 and figures["order"] == "user"
    assert figures["job_late"] == 0  # in user blocks, heavy users first: none is late
    for name in ("raw_produce", "publish", "producer_client", "raw_consume", "job"):
        assert figures[f"{name}_events_per_s"] > 0, name
    assert figures["job_sustained_events_per_s"] >= figures["job_events_per_s"]
    ratio = figures["job_events_per_s"] / figures["raw_consume_events_per_s"]
    assert abs(figures["job_vs_raw_consume"] - ratio) < 1e-3
    assert figures["event_to_redis_samples"] > 0
    assert 0 < figures["event_to_redis_p50_s"] <= figures["event_to_redis_p95_s"] < 30
    _assert_discarded(stack, "bench-ingest")


def test_training_benchmark_reports_the_fit_beside_a_bare_loop(stack):
    figures = _bench(
        stack, "train", "--events", "4000", "--users", "200", "--items", "100", "--epochs", "2"
    )
    assert figures["examples_per_s"] > 0 and figures["bare_loop_examples_per_s"] > 0
    ratio = figures["examples_per_s"] / figures["bare_loop_examples_per_s"]
    assert abs(figures["fit_vs_bare_loop"] - ratio) < 0.01


def test_serving_benchmark_reports_each_path_beside_bare_grpc_and_redis(stack):
    figures = _bench(
        stack, "serve", "--items", "3000", "--seconds", "1", "--users", "300", "--events",
        "3000", "--epochs", "1", "--freshness-probes", "2",
    )  # fmt: skip
    assert figures["items"] == 3000 and figures["item_index"]["items"] == 3000
    names = ("cached", "uncached", "bare_grpc", "raw_redis_get", "raw_index_search")
    for name in (*names, "cached_conc1", "uncached_conc1"):
        latency = figures[name]
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"], name
        assert latency["qps"] > 0, name
    for cached in ("cached", "cached_conc1"):  # all hits after the warm-up
        assert set(figures[cached]["answers"]) == {"cache"}
    assert set(figures["uncached"]["answers"]) == {"model"}
    ratio = figures["cached"]["p99_ms"] / figures["bare_grpc"]["p99_ms"]
    assert abs(figures["cached_p99_vs_bare"] - ratio) < 0.01
    assert len(figures["freshness_s"]) == 2 and 0 < figures["freshness_p95_s"] < 60
    _assert_discarded(stack, "bench-serve")


def _assert_discarded(stack, name):
    """The run's topics and Redis keys are gone from the shared stack."""
    client = redis.Redis.from_url(stack.redis_url)
    assert not list(client.scan_iter(match=f"streamrec-{name}-*", count=1000))
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        assert not [t for t in admin.list_topics() if t.startswith(f"{name}-")]
    finally:
        admin.close()
