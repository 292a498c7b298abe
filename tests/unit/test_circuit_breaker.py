"""The circuit breaker's states, on a clock the test moves."""

import threading

from streamrec.infra.storage.adapters.circuit_breaker import CircuitBreaker


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def breaker(failures=3, open_seconds=1.0):
    clock = Clock()
    return CircuitBreaker("Redis at test", failures, open_seconds, clock), clock


def test_it_opens_only_after_that_many_failures_in_a_row():
    b, _ = breaker()
    b.failed(TimeoutError("1"))
    b.failed(TimeoutError("2"))
    b.succeeded()  # the run is broken: counting starts again
    b.failed(TimeoutError("1"))
    b.failed(TimeoutError("2"))
    assert b.refusal() is None and not b.is_open
    b.failed(TimeoutError("3"))
    assert b.is_open
    assert "after 3 failures in a row" in b.refusal()


def test_past_the_open_period_one_probe_goes_ahead_and_the_rest_wait_for_it():
    b, clock = breaker(open_seconds=1.0)
    for _ in range(3):
        b.failed(TimeoutError())
    clock.now += 0.5
    assert b.refusal() is not None
    clock.now += 0.6
    assert b.refusal() is None  # the probe
    assert b.refusal() is not None  # others, while the probe is out
    b.succeeded()
    assert not b.is_open
    assert b.refusal() is None and b.refusal() is None


def test_a_failed_probe_opens_it_for_another_period():
    b, clock = breaker(open_seconds=1.0)
    for _ in range(3):
        b.failed(TimeoutError())
    clock.now += 1.1
    assert b.refusal() is None
    b.failed(TimeoutError("still hung"))
    clock.now += 0.9
    assert b.refusal() is not None
    clock.now += 0.2
    assert b.refusal() is None


def test_a_probe_that_never_reports_lets_another_through_one_period_later():
    b, clock = breaker(open_seconds=1.0)
    for _ in range(3):
        b.failed(TimeoutError())
    clock.now += 1.1
    assert b.refusal() is None  # this probe's thread died without reporting
    clock.now += 1.1
    assert b.refusal() is None


def test_zero_failures_means_it_never_opens():
    b, _ = breaker(failures=0)
    for _ in range(100):
        b.failed(TimeoutError())
    assert b.refusal() is None


def test_exactly_one_of_many_threads_waiting_at_the_end_of_the_period_probes():
    b, clock = breaker()
    for _ in range(3):
        b.failed(TimeoutError())
    clock.now += 1.1
    admitted, start = [], threading.Barrier(16)

    def call():
        start.wait()
        if b.refusal() is None:
            admitted.append(1)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 1
