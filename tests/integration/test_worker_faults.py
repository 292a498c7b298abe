"""Fault drills on the continuous feature worker: the real broker frozen, the real redis-server
killed and restarted empty, and whatever the worker does about it.

Each test has a broker and a Redis of its own, which it freezes with SIGSTOP or kills with
SIGKILL, and runs the worker as an operator would, `streamrec features run` in its own process
group. What counts is every published event's examples at the end: each exactly once.
"""

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from streamrec.infra.devstack.stack import LocalStack
from streamrec.infra.devstack.stage_process import group_members
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from tests.conftest import free_port
from tests.integration.offline_examples import committed_event_ids

pytestmark = pytest.mark.slow  # SIGSTOP and SIGKILL drills under a running worker


@cache
def stream():
    return generate(SyntheticSpec(users=4000, items=2000, events=310_000, seed=43))


@pytest.fixture
def private_stack(config, tmp_path, run_cli):
    """``config`` over a broker and a Redis of the test's own; (config, stack, worker env)."""
    own = dataclasses.replace(
        config,
        stack=dataclasses.replace(
            config.stack,
            state_dir=str(tmp_path / "stack"),
            kafka_port=free_port(),
            redis_port=free_port(),
        ),
    )
    stack = LocalStack(own)
    assert sorted(stack.up()) == ["kafka", "redis"]
    yield own, stack, run_cli.env(own)
    stack.down()


def _pid(stack, name):
    (pid,) = [s.pid for s in stack.status() if s.name == name]
    assert pid is not None, f"{name} is not running"
    return pid


def _restart_redis_empty(stack):
    os.kill(_pid(stack, "redis"), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(s.pid for s in stack.status() if s.name == "redis"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert stack.up() == ["redis"]


class Worker:
    """`streamrec features run FLAGS` in its own process group, its output in a file."""

    def __init__(self, env, log_dir, *flags):
        self.log = log_dir / f"worker-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "streamrec.infra.cli", "features", "run", *flags]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,  # the JVM and the Python workers in its group
            )  # fmt: skip

    @property
    def output(self):
        return self.log.read_text()

    def wait_for_batches(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while self.output.count("\nbatch ") + self.output.startswith("batch ") < n:
            assert self.process.poll() is None, f"the worker ended: {self.output[-3000:]}"
            assert time.monotonic() < deadline, f"no {n} batches: {self.output[-3000:]}"
            time.sleep(0.2)

    def jvm_pid(self):
        for pid in group_members(self.process.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "java":
                    return pid
        raise AssertionError("the worker has no JVM")

    def stop(self, timeout=60):
        """SIGTERM, as a supervisor stops it; its exit code. Fails if anything of it lingers."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(self.process.pid, signal.SIGKILL)
            lingered = f"the worker lingered {timeout}s after SIGTERM: {self.output[-3000:]}"
            raise AssertionError(lingered) from exc
        _assert_group_ends(self.process.pid)
        return code


def _assert_group_ends(pgid):
    deadline = time.monotonic() + 10
    while group_members(pgid):
        assert time.monotonic() < deadline, "a process of the worker survived it"
        time.sleep(0.1)


def _until_idle(env, log_dir):
    worker = Worker(env, log_dir, "--until-idle", "--max-events-per-batch", "30000")
    code = worker.process.wait(600)
    assert code == 0, worker.output[-3000:]
    return worker.output


def _assert_exactly_once(config, events):
    counts = Counter(committed_event_ids(config))
    missing = {e.event_id for e in events} - set(counts)
    assert not missing, f"{len(missing)} of {len(events)} events have no example"
    repeated = sum(1 for n in counts.values() if n > 1)
    assert repeated == 0, f"{repeated} events have more than one example"
    assert len(counts) == len(events)


def _freeze(stack, name, seconds):
    pid = _pid(stack, name)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_redis_lost_and_a_frozen_broker_in_one_state_directory_lose_nothing(
    private_stack, tmp_path
):
    """The sequence that once lost 135,517 of 310,000 events: the worker now rides out the
    frozen broker and the Redis restart by itself."""
    config, stack, env = private_stack
    events = stream()
    first, second, third = events[:100_000], events[100_000:160_000], events[160_000:300_000]

    publish(config, first, progress=False)
    _until_idle(env, tmp_path)
    _restart_redis_empty(stack)

    worker = Worker(env, tmp_path, "--trigger-seconds", "1")
    time.sleep(15)
    publish(config, second, progress=False)
    _freeze(stack, "kafka", 10)
    worker.wait_for_batches(1, timeout=120)  # it went on by itself
    assert worker.stop() == 0, worker.output[-3000:]
    assert worker.output.count("features rebuild-online") == 1  # Redis had lost the ledger
    _until_idle(env, tmp_path)
    _assert_exactly_once(config, first + second)

    publish(config, third, progress=False)
    worker = Worker(env, tmp_path, "--trigger-seconds", "1", "--max-events-per-batch", "30000")
    time.sleep(30)
    _restart_redis_empty(stack)
    publish(config, events[300_000:], progress=False)  # events keep coming
    time.sleep(40)
    assert worker.process.poll() is None, f"the worker exited: {worker.output[-3000:]}"
    assert worker.stop() == 0, worker.output[-3000:]
    assert "features rebuild-online" in worker.output
    _until_idle(env, tmp_path)
    _assert_exactly_once(config, events)


def test_a_broker_frozen_for_a_minute_is_ridden_out(private_stack, tmp_path):
    config, stack, env = private_stack
    events = stream()[:60_000]
    publish(config, events[:20_000], progress=False)
    worker = Worker(env, tmp_path, "--trigger-seconds", "1")
    worker.wait_for_batches(1)
    publish(config, events[20_000:], progress=False)
    _freeze(stack, "kafka", 60)
    worker.wait_for_batches(2, timeout=180)
    assert worker.process.poll() is None, worker.output[-3000:]
    assert worker.stop() == 0, worker.output[-3000:]
    _until_idle(env, tmp_path)
    _assert_exactly_once(config, events)


def test_a_worker_whose_jvm_died_exits_non_zero_at_once_with_one_line(private_stack, tmp_path):
    config, _, env = private_stack
    publish(config, stream()[:5_000], progress=False)
    worker = Worker(env, tmp_path, "--trigger-seconds", "1")
    worker.wait_for_batches(1)
    os.kill(worker.jvm_pid(), signal.SIGKILL)
    code = worker.process.wait(30)
    _assert_group_ends(worker.process.pid)
    last = worker.output.strip().splitlines()[-1]
    assert code != 0 and last.startswith("streamrec: error: the feature worker's Spark driver"), (
        worker.output[-3000:]
    )


def test_a_broker_that_came_back_empty_stops_until_idle_instead_of_skipping(
    private_stack, tmp_path
):
    """The embedded broker keeps events in memory: restarted, the topic starts again at
    offset 0, behind the checkpoint. Nothing may be skipped without a word."""
    config, stack, env = private_stack
    publish(config, stream()[:20_000], progress=False)
    _until_idle(env, tmp_path)
    os.kill(_pid(stack, "kafka"), signal.SIGKILL)
    while any(s.pid for s in stack.status() if s.name == "kafka"):
        time.sleep(0.1)
    assert stack.up() == ["kafka"]
    publish(config, stream()[20_000:25_000], progress=False)
    worker = Worker(env, tmp_path, "--until-idle")
    code = worker.process.wait(300)
    last = worker.output.strip().splitlines()[-1]
    assert code != 0 and "ends at offset" in last and "before offset" in last, last
