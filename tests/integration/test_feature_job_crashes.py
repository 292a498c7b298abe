"""The feature job killed with kill -9 at random points: nothing lost, nothing duplicated.

Each kill takes the job, its JVM and its Python workers at once (the whole process group),
as an OOM killer or a lost node would. Then one `--until-idle` run must finish everything that
was published before it started. The stream comes in time order, and again in user blocks
(a warehouse dump), where batches cut users' timelines apart.
"""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from functools import cache

import pytest
import redis

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.devstack.stage_process import group_members
from streamrec.infra.storage import open_offline_examples
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate, in_user_blocks
from tests.integration.offline_examples import committed_event_ids

pytestmark = pytest.mark.slow  # kill -9 drills over 300k events

KILLS = 3


@cache
def stream():
    return generate(SyntheticSpec(users=4000, items=2000, events=300_000, seed=31))


@pytest.fixture
def worker_env(config, run_cli):
    return run_cli.env(config)


def _start(env, *flags):
    command = [sys.executable, "-m", "streamrec.infra.cli", "features", "run", *flags]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,  # its own process group: the JVM and Python workers included
    )  # fmt: skip


def _kill_9_after_batches(worker, batches, extra_seconds):
    seen = 0
    while seen < batches:
        line = worker.stdout.readline()
        assert line, "the job ended before it could be killed"
        seen += line.startswith("batch ")
    time.sleep(extra_seconds)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while group_members(worker.pid):
        assert time.monotonic() < deadline, "a process of the killed job survived"
        time.sleep(0.1)


@pytest.mark.parametrize("order", ["time", "user"])
def test_kill_9_at_random_points_then_until_idle_loses_and_duplicates_nothing(
    config, worker_env, order
):
    events = stream() if order == "time" else in_user_blocks(stream())
    publish(config, events, progress=False)
    rng = random.Random(7)
    for _ in range(KILLS):
        worker = _start(worker_env, "--until-idle", "--max-events-per-batch", "30000")
        _kill_9_after_batches(worker, rng.randint(0, 2), rng.uniform(0.0, 2.5))

    final = _start(worker_env, "--until-idle", "--max-events-per-batch", "30000")
    output, _ = final.communicate(timeout=600)
    assert final.returncode == 0, output[-2000:]

    assert {f.layout for f in open_offline_examples(config).files()} == {"sequences"}
    assert ", 0 late to " in output.splitlines()[-1]
    counts = Counter(committed_event_ids(config))
    assert len(counts) == len(events), "examples were lost"
    assert set(counts) == {e.event_id for e in events}
    assert max(counts.values()) == 1, "examples were duplicated"
    _assert_history_is_each_users_newest_events(config, events)


def _assert_history_is_each_users_newest_events(config, events):
    by_user = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    client = redis.Redis.from_url(config.redis_url)
    pipe = client.pipeline(transaction=False)
    for user in by_user:
        pipe.zrange(spec.user_history_key(config.redis.key_prefix, user), 0, -1)
    capacity = config.features.online_history_length
    for (user, timeline), stored in zip(by_user.items(), pipe.execute(), strict=True):
        newest = sorted(timeline, key=lambda e: e.timestamp)[-capacity:]
        expected = {f'["{e.item_id}","{e.event_id}","{e.event_type}"]'.encode() for e in newest}
        assert set(stored) == expected, f"history of {user}"
