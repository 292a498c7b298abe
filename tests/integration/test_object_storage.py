"""The pipeline on object storage: the feature job commits examples to an S3-compatible server,
the trainer reads them from there and publishes its version there, and serving replicas, each
with its own local copy, follow the pointer there under load."""

import dataclasses
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from streamrec.infra.core.config import render_toml
from streamrec.infra.devstack.stage_process import cli_command, cli_environment
from streamrec.infra.storage import (
    open_event_bus,
    open_model_registry,
    open_offline_examples,
    open_online_store,
)
from streamrec.infra.storage.adapters.storage_root import StorageRoot
from streamrec.infra.storage.ports.online_store import HistoryEntry
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate, generate_items
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import RankingServer
from streamrec.training.export import export_catalog
from tests.integration.conftest import TRAINING_EVENTS_SPEC, namespaced
from tests.integration.offline_examples import committed_records
from tests.integration.test_serving_reload import USERS, Load

pytestmark = pytest.mark.slow  # a feature job, a training run and two servers

EVENTS = generate(SyntheticSpec(**{**TRAINING_EVENTS_SPEC, "events": 4000, "days": 4}))


def _on_s3(config, bucket, cache):
    return dataclasses.replace(
        config,
        offline_examples=dataclasses.replace(
            config.offline_examples, path=f"{bucket}/examples", cache_dir=str(cache / "examples")
        ),
        training=dataclasses.replace(config.training, model_dir=f"{bucket}/models", epochs=3),
        model_registry=dataclasses.replace(config.model_registry, cache_dir=str(cache / "models")),
    )


def _replica(config, cache):
    """A serving replica's config: the same bucket, its own cache and port."""
    return dataclasses.replace(
        config,
        serving=dataclasses.replace(config.serving, port=0, reload_seconds=0.2),
        model_registry=dataclasses.replace(config.model_registry, cache_dir=str(cache)),
    )


def _features(run_cli, config):
    bus = open_event_bus(config)
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        bus.ensure_topic(topic)
    publish(config, EVENTS, progress=False)
    done = run_cli.run(config, "features", "run", "--until-idle")
    assert done.returncode == 0, done.stderr[-3000:]


def test_examples_and_models_live_in_the_bucket_and_replicas_follow_the_pointer(
    stack, s3_bucket, run_cli, tmp_path
):
    local = namespaced(stack, tmp_path / "local")
    config = _on_s3(namespaced(stack, tmp_path / "s3"), s3_bucket, tmp_path / "trainer")
    _features(run_cli, local)
    _features(run_cli, config)
    assert committed_records(config) == committed_records(local)  # as on a local disk
    named = {f.path for m in open_offline_examples(config).manifests() for f in m.files}
    objects = StorageRoot(config.examples_location).find("")
    assert {o for o in objects if not o.startswith("_manifests/")} == named  # no strays
    assert not (tmp_path / "s3" / "examples").exists()

    store = open_online_store(config)
    store.put_items(generate_items(SyntheticSpec(**TRAINING_EVENTS_SPEC)))
    store.append_history([(u, HistoryEntry(1, f"{u}-e", EVENTS[0].item_id, "view")) for u in USERS])
    trained = run_cli.run(config, "train")
    assert trained.returncode == 0, trained.stderr[-3000:]
    registry = open_model_registry(config)
    if registry.current() is None:  # the gate's verdict is not what this test is about
        registry.promote(1, "test")
    assert [v.version for v in registry.versions()] == [1]
    evaluated = run_cli.run(config, "evaluate", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = StorageRoot(config.model_location).find("1/evaluation")
    assert sorted(name.rsplit("/", 1)[-1] for name in report) == ["evaluation.json", "report.html"]
    assert evaluated.stdout.count("report: s3://") == 1

    replicas = [_replica(config, tmp_path / f"replica-{n}") for n in range(2)]
    servers = [RankingServer(r, RetrievalModel(open_model_registry(r).current())) for r in replicas]
    for server in servers:
        server.start()
    try:
        with Load(servers[0].address, clients=2) as first, Load(servers[1].address, 2) as second:
            first.wait_for(1)
            second.wait_for(1)
            base = registry.version(1)
            ids = base.item_ids_file.read_text().splitlines()
            embeddings = np.load(base.item_embeddings_file)
            grown = export_catalog(registry, base, ids, embeddings, None, {"type": "exact"})
            registry.promote(grown.version, "test")
            first.wait_for(2)
            second.wait_for(2)
    finally:
        for server in servers:
            server.stop(grace=1)
    assert first.errors == [] and second.errors == []
    for n in range(2):  # each replica mapped its own copy of both versions
        copies = tmp_path / f"replica-{n}"
        assert sorted(p.name for p in copies.iterdir() if p.name.isdigit()) == ["1", "2"]


def test_a_trainer_killed_mid_fit_resumes_on_another_machine_from_the_bucket(
    trained_copy, s3_bucket, tmp_path
):
    config = dataclasses.replace(
        trained_copy,
        training=dataclasses.replace(
            trained_copy.training, model_dir=f"{s3_bucket}/models", epochs=25,
            checkpoint_every_steps=5,
        ),
    )  # fmt: skip
    bucket = StorageRoot(config.model_location)

    def machine(name):
        cache = dataclasses.replace(config.model_registry, cache_dir=str(tmp_path / name))
        path = tmp_path / f"{name}.toml"
        path.write_text(render_toml(dataclasses.replace(config, model_registry=cache)))
        return cli_command(["train"]), cli_environment(path)

    argv, env = machine("first")
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while not [n for n in bucket.find(".runs") if n.endswith("/checkpoint")]:
        assert time.monotonic() < deadline and first.poll() is None, "no checkpoint was copied"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert open_model_registry(config).versions() == []  # nothing half-published

    argv, env = machine("second")  # its own disk: it finds the run in the bucket only
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from the checkpoint" in second.stdout
    fit = open_model_registry(config).versions()[-1].metadata()["fit"]
    assert fit["resumed"] and 0 < fit["steps_run"] < fit["steps_planned"]
    assert bucket.find(".runs") == []  # the run's copy goes once the version is published
