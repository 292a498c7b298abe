"""The whole skeleton end to end: `streamrec demo` as a user runs it, on a small planted dataset."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamrec.infra.devstack.daemon import port_open
from tests.conftest import free_port


@pytest.fixture
def demo_env(tmp_path):
    ports = {"kafka": free_port(), "redis": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")} | {
        "STREAMREC_STACK_STATE_DIR": str(tmp_path / "state"),
        "STREAMREC_STACK_KAFKA_PORT": str(ports["kafka"]),
        "STREAMREC_STACK_REDIS_PORT": str(ports["redis"]),
    }
    return env, ports, tmp_path / "state"


def _demo(*args):
    return [sys.executable, "-m", "streamrec.infra.cli", "demo", *args]


def _assert_nothing_left(ports, state):
    assert not port_open("127.0.0.1", ports["kafka"]) and not port_open("127.0.0.1", ports["redis"])
    assert not list((state / "run").glob("*.pid"))


def test_demo_serves_recommendations_that_beat_popularity(demo_env):
    env, ports, state = demo_env
    size = ["--users", "300", "--items", "400", "--events", "15000", "--epochs", "12"]
    result = subprocess.run(_demo(*size), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((state / "demo" / "summary.json").read_text())
    assert summary["held_out_events"] == 300
    model, popularity = summary["model_recall_at_10"], summary["popularity_recall_at_10"]
    # Held-out items the user already had are left out as seen, by both rankings.
    reachable = 1 - summary["held_out_repeats"] / 300
    assert model > 2 * popularity and model / reachable > 0.3, summary
    assert "held-out next item" in result.stdout and "most popular baseline" in result.stdout
    _assert_nothing_left(ports, state)


def test_failing_demo_stops_what_it_started(demo_env):
    env, ports, state = demo_env
    result = subprocess.run(
        _demo("--users", "10", "--items", "5", "--events", "12"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("streamrec: error: demo: need at least")
    assert "starting the embedded stack" in result.stdout  # the stack was up when it failed
    _assert_nothing_left(ports, state)


def test_interrupted_demo_stops_every_process_it_started(demo_env):
    env, ports, state = demo_env
    demo = subprocess.Popen(
        _demo("--users", "200", "--items", "200", "--events", "8000"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for line in demo.stdout:
            if line.startswith("==> feature job"):
                break
        deadline = time.monotonic() + 30
        while not (features := _children_running(demo.pid, "features")):
            assert time.monotonic() < deadline, "the feature job never started"
            time.sleep(0.1)
        time.sleep(3)  # let it start Spark: its JVM must be stopped with it
        features += [child for pid in features for child in _children_running(pid, "java")]
        demo.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
        assert demo.wait(timeout=60) == 130
    finally:
        demo.kill()
    assert "streamrec: interrupted" in demo.stderr.read()
    _assert_nothing_left(ports, state)
    assert not any(_running(pid) for pid in features)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children_running(parent: int, word: str) -> list[int]:
    """Pids of the parent's child processes whose command line mentions ``word``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat[1]) == parent and word in command:
            found.append(int(entry))
    return found
