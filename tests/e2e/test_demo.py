"""The whole skeleton end to end: `streamrec demo` on a small planted dataset, as a user runs it."""

import json
import os
import subprocess
import sys

from infra.probes import port_open
from tests.conftest import free_port


def test_demo_serves_recommendations_that_beat_popularity(tmp_path):
    kafka_port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")} | {
        "STREAMREC_STACK_STATE_DIR": str(tmp_path / "state"),
        "STREAMREC_STACK_KAFKA_PORT": str(kafka_port),
        "STREAMREC_STACK_REDIS_PORT": str(redis_port),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.cli",
            "demo",
            "--users",
            "300",
            "--items",
            "400",
            "--events",
            "15000",
            "--epochs",
            "4",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "state" / "demo" / "summary.json").read_text())
    assert summary["held_out_events"] == 300
    model, popularity = summary["model_recall_at_10"], summary["popularity_recall_at_10"]
    assert model > 2 * popularity and model > 0.3, summary
    assert "held-out next item" in result.stdout and "most popular baseline" in result.stdout
    # It stopped what it started.
    assert not port_open("127.0.0.1", kafka_port) and not port_open("127.0.0.1", redis_port)
    assert not list((tmp_path / "state" / "run").glob("*.pid"))
