"""The benchmarks' report arithmetic: each figure beside its baseline from the same run.
One real bench run (tests/integration/test_benchmarks.py) checks the measuring itself."""

import pytest

from streamrec.infra.bench.ingest import with_ratios
from streamrec.infra.bench.serve import ratios
from streamrec.infra.bench.train import fit_figures


def test_ingest_rates_are_divided_by_their_raw_baselines_and_rounded():
    results = {
        "events": 3000,
        "raw_produce_events_per_s": 40_000.0,
        "publish_events_per_s": 10_000.0,
        "producer_client_events_per_s": 30_000.0,
        "raw_consume_events_per_s": 90_000.0,
        "job_events_per_s": 30_000.0,
        "event_to_redis_p50_s": 0.123456,
    }
    report = with_ratios(results)
    assert report["publish_vs_raw_produce"] == 0.25
    assert report["producer_client_vs_raw_produce"] == 0.75
    assert report["job_vs_raw_consume"] == 0.3333
    assert report["event_to_redis_p50_s"] == 0.1235 and report["events"] == 3000


def _latency(p99, qps):
    return {"p50_ms": p99 / 4, "p95_ms": p99 / 2, "p99_ms": p99, "qps": qps}


def test_serving_paths_are_compared_with_bare_grpc():
    results = {
        "bare_grpc": _latency(2.0, 4000),
        "bare_grpc_conc1": _latency(0.5, 1500),
        "cached": _latency(5.0, 1000),
        "uncached": _latency(9.0, 600),
        "uncached_conc1": _latency(3.1, 400),
    }
    assert ratios(results) == {
        "cached_p99_vs_bare": 2.5,
        "cached_qps_vs_bare": 0.25,
        "uncached_p99_vs_bare": 4.5,
        "uncached_conc1_p99_ms": 3.1,
        "bare_conc1_p99_ms": 0.5,
    }


def test_the_fit_rate_comes_from_the_fastest_epoch_after_the_first():
    figures = fit_figures(queries=1000, epoch_seconds=[9.0, 0.5, 0.4, 0.8], bare_rate=2000.0)
    assert figures["examples_per_s"] == 2500  # 1000 / 0.4; the tracing first epoch is left out
    assert figures["fit_vs_bare_loop"] == 1.25
    assert figures["bare_loop_examples_per_s"] == 2000
    assert figures["epoch_seconds"] == [9.0, 0.5, 0.4, 0.8]


def test_a_one_epoch_fit_uses_its_only_epoch():
    assert fit_figures(100, [0.5], 100.0)["examples_per_s"] == pytest.approx(200)


def test_quality_steps_always_include_the_default_and_unknown_ones_are_named():
    from streamrec.infra.bench.recipe_steps import DEFAULT, STEPS, steps_named
    from streamrec.infra.core.errors import StreamrecError

    assert [s.name for s in steps_named(["history-100"])] == [DEFAULT, "history-100"]
    assert steps_named([]) == list(STEPS) and STEPS[0].name == DEFAULT
    with pytest.raises(StreamrecError, match=r"unknown recipe step history-7 \(known: default"):
        steps_named(["history-7"])
