"""Retrying through outages, on a clock the test moves."""

import pytest

from streamrec.features.outage_budget import LONGEST_WAIT_SECONDS, OutageBudget
from streamrec.infra.core.errors import StoreUnavailable


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures):
    calls = []

    def step():
        calls.append(1)
        if len(calls) <= failures:
            raise StoreUnavailable(f"Kafka is unreachable (call {len(calls)})")
        return "done"

    return step, calls


def test_a_short_outage_is_ridden_out_with_growing_waits():
    clock = Clock()
    budget = OutageBudget(300, clock, clock.sleep)
    step, calls = flaky(4)
    assert budget.run(step, "batch 3") == "done"
    assert len(calls) == 5 and budget.retries == 4
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_waits_stop_growing_and_the_budget_ends_the_outage_with_the_last_error():
    clock = Clock()
    budget = OutageBudget(60, clock, clock.sleep)
    step, _ = flaky(10_000)
    with pytest.raises(
        StoreUnavailable,
        match=r"batch 3: storage unavailable for 60 s, past "
        r"features.outage_budget_seconds \(60\): Kafka is unreachable",
    ):
        budget.run(step, "batch 3")
    assert max(clock.sleeps) == LONGEST_WAIT_SECONDS
    assert clock.now == 60  # the last wait is cut to what is left


def test_a_success_ends_the_outage_so_the_next_one_gets_the_whole_budget():
    clock = Clock()
    budget = OutageBudget(10, clock, clock.sleep)
    step, _ = flaky(3)
    budget.run(step, "batch 1")  # 3.5 s of outage
    step, _ = flaky(4)
    assert budget.run(step, "batch 2") == "done"  # 7.5 s: within a fresh budget


def test_steps_are_timed_apart():
    clock = Clock()
    budget = OutageBudget(10, clock, clock.sleep)
    budget.failed(StoreUnavailable("down"), "item catalog")
    clock.now = 8
    budget.succeeded("batch 1")  # does not end the catalog's outage
    clock.now = 11
    with pytest.raises(StoreUnavailable, match="item catalog: storage unavailable for 11 s"):
        budget.failed(StoreUnavailable("down"), "item catalog")
