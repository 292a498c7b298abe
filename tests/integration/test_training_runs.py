"""Training runs as operators run them: warm starts, schedules, kill -9, two workers, GPU
switches on CPU, and the logs they leave."""

import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from streamrec.infra.contracts.export_layout import versions
from streamrec.infra.core.config import render_toml
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.devstack.stage_process import cli_command, cli_environment
from streamrec.infra.storage import open_model_registry
from streamrec.training.trainer import train
from tests.conftest import free_port

pytestmark = pytest.mark.slow  # CLI training runs: resume, schedules, two workers


def _recall(result, name="candidate"):
    return result.evaluation["models"][name]["recall@10"]


def test_warm_start_continues_from_the_serving_weights(trained_copy):
    config = trained_copy
    frozen = dataclasses.replace(config.training, epochs=1, learning_rate=1e-9)
    warm = train(config, frozen, warm_start=True)
    # With no learning to speak of, the warm model is the serving one...
    assert _recall(warm) == pytest.approx(_recall(warm, "version 1"), abs=0.01)
    metadata = warm.version.metadata()
    assert metadata["fit"]["warm_start"] == {"from_version": 1, "items_kept": 120, "items_new": 0}
    assert metadata["item_features"]["categories"] == 3  # the planted groups, kept by name
    # ...while the same fit from scratch knows nothing (its tower alone, without the boosts,
    # which would lift even an untrained tower to most of the way).
    cold = train(config, dataclasses.replace(frozen, popularity_prior_window="",
                                             neighbours_per_item=0))  # fmt: skip
    assert _recall(cold) < 0.5 * _recall(warm)


def test_a_version_without_event_context_warm_starts_a_run_that_reads_it(trained_copy):
    config = trained_copy
    without = dataclasses.replace(config.training, event_context=False, request_context=False)
    old = train(config, without)
    open_model_registry(config).promote(old.version.version, "a version from before context")
    frozen = dataclasses.replace(config.training, epochs=1, learning_rate=1e-9)
    warm = train(config, frozen, warm_start=True)
    assert warm.version.metadata()["fit"]["warm_start"]["from_version"] == old.version.version
    # The item embeddings were kept: far better than the same fit from scratch would be.
    assert _recall(warm) > 0.5 * _recall(warm, f"version {old.version.version}")
    open_model_registry(config).promote(warm.version.version, "reads event context")
    with pytest.raises(StreamrecError, match="reads event context and this run does not"):
        train(config, dataclasses.replace(frozen, event_context=False), warm_start=True)
    with pytest.raises(StreamrecError, match="reads request context and this run does not"):
        train(config, dataclasses.replace(frozen, request_context=False), warm_start=True)


def test_tensorboard_logs_of_the_fit_and_the_evaluation_are_kept_with_the_version(trained):
    config, _, result = trained
    tags = set()
    for path in (result.version.root / "logs").rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_loss", "epoch_learning_rate", "candidate/recall@10", "ease/recall@10"} <= tags
    assert not (config.model_dir / ".runs").exists() or not any(
        (config.model_dir / ".runs").iterdir()
    )


def test_mixed_precision_and_xla_switches_train_correctly_on_cpu(trained_copy):
    config = trained_copy
    switches = dataclasses.replace(
        config.training, epochs=1, mixed_precision=True, jit_compile=True
    )
    result = train(config, switches)
    assert np.isfinite(result.version.metadata()["fit"]["train_loss"])
    embeddings = np.load(result.version.item_embeddings_file)
    assert embeddings.dtype == np.float32 and np.isfinite(embeddings).all()
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored afterwards


def _command(config, tmp_path, *argv, env=None, **training):
    config = dataclasses.replace(config, training=dataclasses.replace(config.training, **training))
    path = tmp_path / "streamrec.toml"
    path.write_text(render_toml(config))
    base = {k: v for k, v in cli_environment(path).items() if k != "TF_CONFIG"}
    return cli_command(argv), base | (env or {})


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_train_resumes_from_its_checkpoint_after_kill_9(trained_copy, tmp_path):
    config = trained_copy
    argv, env = _command(config, tmp_path, "train", epochs=25, checkpoint_every_steps=5)
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, start_new_session=True)
    runs = config.model_dir / ".runs"
    _wait_for(lambda: any(runs.glob("*/backup/**/checkpoint")), 120, "a checkpoint")
    time.sleep(1.0)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert [v.version for v in versions(config.model_dir)] == [1]  # nothing half-exported

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from the checkpoint" in second.stdout
    fit = versions(config.model_dir)[-1].metadata()["fit"]
    assert fit["resumed"] and 0 < fit["steps_run"] < fit["steps_planned"]
    assert not any(runs.iterdir())  # checkpoints are removed once the version is exported


def test_two_workers_train_one_model_as_well_as_one_process(trained_copy, tmp_path):
    config = trained_copy
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = []
    for index in (0, 1):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        (tmp_path / str(index)).mkdir()
        argv, env = _command(config, tmp_path / str(index), "train", env={"TF_CONFIG": tf_config})
        workers.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=900)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert "exported model version 2" in outputs[0]
    assert "the chief evaluates and exports" in outputs[1]
    metadata = versions(config.model_dir)[-1].metadata()
    assert metadata["fit"]["replicas"] == 2
    figures = metadata["evaluation"]["models"]
    single, distributed = figures["version 1"]["recall@10"], figures["candidate"]["recall@10"]
    assert distributed == pytest.approx(single, rel=0.15)
    assert distributed > figures["ease"]["recall@10"]


def test_train_every_retrains_on_schedule_until_stopped(trained_copy, tmp_path):
    config = trained_copy
    argv, env = _command(config, tmp_path, "train", "--every", "2s", "--warm-start", epochs=1)
    scheduler = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        # Three scheduled versions, so the first two are surely logged: a SIGTERM that lands
        # between an export's rename and its log line ends that run before the line.
        _wait_for(lambda: len(versions(config.model_dir)) >= 4, 300, "three scheduled versions")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        out, _ = scheduler.communicate(timeout=60)
    assert scheduler.returncode == 0
    assert out.count("exported model version") >= 2 and "next training run in" in out
    assert open_model_registry(config).current() is not None


def test_a_catalog_above_the_exact_limit_gets_an_index_checked_against_exact_search(
    trained_copy,
):
    from streamrec.infra.storage.ports.online_store import HistoryEntry
    from streamrec.serving.item_filter import ItemFilter
    from streamrec.serving.item_index import ApproximateIndex, ExactIndex
    from streamrec.serving.retrieval_model import RetrievalModel

    config = trained_copy
    params = dataclasses.replace(config.training, epochs=1, exact_search_max_items=50)
    result = train(config, params, warm_start=True)
    described = result.version.metadata()["item_index"]
    assert described["type"] == "hnsw" and described["items"] == 120
    assert described["recall_at_100"] >= 0.95 and described["queries"] > 0
    assert result.version.ann_index_file.is_file()
    served = RetrievalModel(result.version)
    assert isinstance(served.index, ApproximateIndex)
    mapped = Path("/proc/self/maps").read_text()  # shared by the host's server processes
    assert str(result.version.ann_index_file) in mapped
    assert str(result.version.item_embeddings_file) in mapped
    exact = ExactIndex(np.load(result.version.item_embeddings_file))
    # Approximate: checked at export to find at least 95% of exact search's top lists, on
    # average over queries; so too here, over the one-item histories of 60 items.
    found, scores = [], []
    for item in served.item_ids[:60]:
        query = served.query_embedding("u-000001", [HistoryEntry(1, "e", item, "view")], 10_000)
        ranked = served.top_k(query, 10, ItemFilter())
        exact_top = set(served.item_ids[exact.search(query, 10)[0]].tolist())
        found.append(len(exact_top & {shown for shown, _ in ranked}) / 10)
        scores = [score for _, score in ranked]
    assert np.mean(found) >= 0.9
    assert scores == sorted(scores, reverse=True)  # exact scores, from the embeddings
