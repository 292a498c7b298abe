"""`streamrec bench quality` on the session's examples: one version per step, one evaluation."""

import dataclasses

import pytest

from streamrec.infra.bench.quality import run_quality_benchmark
from streamrec.infra.bench.recipe_steps import steps_named
from streamrec.infra.contracts.export_layout import versions
from streamrec.infra.storage import open_model_registry

pytestmark = pytest.mark.slow  # two fits and two evaluations


def test_each_step_is_one_version_ranked_beside_the_default_and_the_baselines(
    trained_copy, tmp_path
):
    config = dataclasses.replace(
        trained_copy, stack=dataclasses.replace(trained_copy.stack, state_dir=str(tmp_path))
    )
    config = dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=3))
    table = run_quality_benchmark(config, steps_named(["history-20"]), say=lambda line: None)
    default, longer = table["steps"]
    assert (default["step"], longer["step"]) == ("default", "history-20")
    assert (default["settings"]["history_length"], longer["settings"]["history_length"]) == (5, 20)
    for protocol in ("temporal", "leave_last_out_unseen"):
        assert table["queries"][protocol] > 0
        figures = longer[protocol]
        low, high = figures["recall@10_interval"]
        assert low <= figures["recall@10"] <= high
        assert "vs_ease" in figures and "interval" in figures  # the paired difference
        assert "interval" not in default[protocol]  # the default is the reference
        assert set(table["baselines"][protocol]) == {"most_popular", "ease"}
    # Its versions live in a registry of their own; what serves is untouched.
    assert [v.version for v in versions(tmp_path / "bench-quality" / "models")] == [1, 2]
    assert [v.version for v in versions(config.model_dir)] == [1]
    assert open_model_registry(config).current().version == 1
