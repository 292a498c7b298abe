"""Scheduling and cluster checks, which must fail fast and clearly before any training."""

import json
import threading

import numpy as np
import pytest

from streamrec.infra.cli.train_schedule import parse_interval, run_every
from streamrec.infra.core.errors import StreamrecError
from streamrec.training.distribution import SINGLE, cluster_role, distribution_strategy
from streamrec.training.warm_start import _grown


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400)]
)
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["6", "0h", "1w", "h", "-1h", "1.5h"])
def test_bad_intervals_are_named(text):
    with pytest.raises(StreamrecError, match="is not an interval like 30m, 6h or 1d"):
        parse_interval(text)


class _Clock:
    def __init__(self):
        self.now = 0.0


def test_runs_keep_a_fixed_rate_skip_missed_slots_and_survive_failures():
    clock, stop, starts = _Clock(), threading.Event(), []
    durations = iter([10, 250, 10, 10])

    def run():
        starts.append(clock.now)
        clock.now += next(durations)
        if len(starts) == 2:
            raise StreamrecError("no committed training examples")
        if len(starts) == 4:
            stop.set()

    waits = []
    stop.wait = lambda seconds: (waits.append(seconds), setattr(clock, "now", clock.now + seconds))
    failures = run_every(100, run, stop, clock=lambda: clock.now)
    assert failures == 1
    assert starts == [0, 100, 400, 500]  # the 250 s run skipped the slot at 300
    assert waits == [90, 50, 90, 90]


def _tf_config(**task):
    cluster = {"worker": ["localhost:2222", "localhost:2223"]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}


def test_a_cluster_role_from_tf_config():
    assert cluster_role({}) is SINGLE
    role = cluster_role(_tf_config(type="worker", index=1))
    assert role.tasks == 2 and not role.is_chief
    assert cluster_role(_tf_config(type="worker", index=0)).is_chief


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not a cluster description"),
        ({"TF_CONFIG": '{"cluster": {}}'}, "TF_CONFIG is not a cluster description"),
        (_tf_config(type="worker", index=2), "task worker 2 is not in its cluster"),
        (_tf_config(type="ps", index=0), "task type 'ps'"),
        (
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": ["nohost"]}, "task": {"type": "worker"}}
                )
            },
            "'nohost' is not host:port",
        ),
    ],
)
def test_a_tf_config_that_does_not_fit_is_refused(environ, message):
    with pytest.raises(StreamrecError, match=message):
        cluster_role(environ)


def test_strategy_and_cluster_must_agree():
    with pytest.raises(StreamrecError, match="multi_worker needs TF_CONFIG"):
        distribution_strategy("multi_worker", SINGLE)
    with pytest.raises(
        StreamrecError, match=r"describes 2 tasks but training\.strategy is one_device"
    ):
        distribution_strategy("one_device", cluster_role(_tf_config(type="worker", index=0)))
    assert distribution_strategy("auto", SINGLE).num_replicas_in_sync == 1


def test_warm_start_keeps_known_item_rows_and_special_rows():
    old = np.arange(5 * 2, dtype=np.float32).reshape(5, 2)  # 3 special rows, items a, b
    fresh = np.full((6, 2), -1.0, np.float32)  # 3 special rows, items b, c, a
    table = _grown(old, fresh, ["b", "c", "a"], {"a": 3, "b": 4}, reserved=3)
    assert table[:3].tolist() == old[:3].tolist()
    assert table[3].tolist() == old[4].tolist() and table[5].tolist() == old[3].tolist()
    assert table[4].tolist() == [-1.0, -1.0]  # c is new: it keeps its fresh initialisation


def test_warm_start_keeps_category_rows_by_name():
    old = np.arange(3 * 2, dtype=np.float32).reshape(3, 2)  # row 0: no category; x, y
    fresh = np.full((3, 2), -1.0, np.float32)  # row 0; y, z
    table = _grown(old, fresh, ["y", "z"], {"x": 1, "y": 2}, reserved=1)
    assert table[0].tolist() == old[0].tolist() and table[1].tolist() == old[2].tolist()
    assert table[2].tolist() == [-1.0, -1.0]
