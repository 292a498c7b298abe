"""A benchmark as an operator runs it: real services, and a JSON last line with the figures
the issues name, each beside its baseline from the same run. One small run measures for real;
the report arithmetic of every benchmark is unit-tested (tests/unit/test_bench_reports.py)."""

import json
import os
import subprocess
import sys

import pytest
import redis
from kafka import KafkaAdminClient

pytestmark = pytest.mark.slow  # real bench runs


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


def _assert_discarded(stack, name):
    """The run's topics and Redis keys are gone from the shared stack."""
    client = redis.Redis.from_url(stack.redis_url)
    assert not list(client.scan_iter(match=f"streamrec-{name}-*", count=1000))
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        assert not [t for t in admin.list_topics() if t.startswith(f"{name}-")]
    finally:
        admin.close()
