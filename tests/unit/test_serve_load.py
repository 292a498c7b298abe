"""The load generator of `streamrec bench serve` ends with an error when a client fails,
instead of waiting forever at its start barrier."""

import pytest

from streamrec.infra.cli import serve_load
from tests.conftest import free_port


def test_a_client_that_cannot_call_ends_the_run_with_its_error():
    spec = {"call": "check", "target": f"127.0.0.1:{free_port()}", "concurrency": 4,
            "seconds": 1.0, "warmup_seconds": 0.0, "k": 10, "users": ["u"]}  # fmt: skip
    with pytest.raises(SystemExit, match=r"(?s)a load client failed: .*UNAVAILABLE"):
        serve_load.run(spec)


def test_summary_reports_percentiles_and_rate():
    result = serve_load.summary([0.001 * n for n in range(1, 101)], seconds=2.0)
    assert result["p50_ms"] == 51.0 and result["p99_ms"] == 100.0
    assert result["qps"] == 50.0 and result["calls"] == 100
