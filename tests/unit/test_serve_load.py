"""The load generator of `streamrec bench serve`: interleaved plans, and a failing client ends
the run with its error instead of leaving the others waiting at the start barrier."""

from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from streamrec.infra.bench import serve_load
from tests.conftest import free_port


def test_a_client_that_cannot_call_ends_the_run_with_its_error():
    target = f"127.0.0.1:{free_port()}"
    spec = {"plans": {"bare": {"call": "check", "target": target}}, "concurrency": 4,
            "seconds": 1.0, "warmup_seconds": 0.0, "k": 10, "users": ["u"]}  # fmt: skip
    with pytest.raises(SystemExit, match=r"(?s)a load client failed: .*UNAVAILABLE"):
        serve_load.run(spec)


def test_plans_take_turns_in_slices_after_a_warm_up_of_every_plan():
    schedule = serve_load._Schedule(
        ["a", "b"], warmup=1.0, slice_seconds=0.5, rounds=2, settle=0.05
    )
    assert [schedule.plan(0.2, calls) for calls in range(3)] == [
        ("a", False), ("b", False), ("a", False),
    ]  # fmt: skip
    measured = [schedule.plan(t, 0) for t in (1.1, 1.6, 2.1, 2.6)]
    assert measured == [("a", True), ("b", True), ("a", True), ("b", True)]
    assert schedule.plan(1.52, 0) == ("b", False)  # settling after the switch
    assert schedule.plan(3.01, 0) == (None, False)


def test_each_plan_is_measured_for_its_own_seconds():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        check = {"call": "check", "target": f"127.0.0.1:{port}"}
        spec = {"plans": {"first": check, "second": check}, "concurrency": 2,
                "seconds": 0.6, "slice_seconds": 0.2, "settle_seconds": 0.05,
                "warmup_seconds": 0.2}  # fmt: skip
        figures = serve_load.run(spec)
    finally:
        server.stop(None)
    for name in ("first", "second"):
        assert figures[name]["calls"] > 0
        assert figures[name]["answers"] == {"1": figures[name]["calls"]}  # SERVING
        counted = 3 * (0.2 - 0.05)  # three slices each, less their settling
        assert figures[name]["qps"] == pytest.approx(figures[name]["calls"] / counted, abs=0.1)


def test_summary_reports_percentiles_and_rate():
    result = serve_load.summary([0.001 * n for n in range(1, 101)], seconds=2.0)
    assert result["p50_ms"] == 51.0 and result["p99_ms"] == 100.0
    assert result["qps"] == 50.0 and result["calls"] == 100
