"""Training on object storage: a trainer killed mid-fit resumes on another machine from the
checkpoints it copied to the bucket. The rest of the pipeline on a bucket (the feature job, the
trainer's version, replicas following the pointer, evaluate's report) runs in the multi-node
test, tests/cluster/test_multi_node.py, and in tests/integration/test_spark_cluster.py."""

import dataclasses
import os
import signal
import subprocess
import time

import pytest

from streamrec.infra.core.config import render_toml
from streamrec.infra.devstack.stage_process import cli_command, cli_environment
from streamrec.infra.storage import open_model_registry
from streamrec.infra.storage.adapters.storage_root import StorageRoot

pytestmark = pytest.mark.slow  # two training runs


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
