"""Deployment manifests must call the command line that exists."""

from pathlib import Path

import yaml

from streamrec.infra.cli.main import build_parser

KUBERNETES = Path(__file__).resolve().parents[2] / "infra" / "kubernetes"


def test_the_trainer_cronjob_runs_a_valid_warm_started_train_command():
    job = yaml.safe_load((KUBERNETES / "trainer-cronjob.yaml").read_text())
    assert job["kind"] == "CronJob" and len(job["spec"]["schedule"].split()) == 5
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"  # a killed pod resumes from its checkpoint
    command = pod["containers"][0]["command"]
    assert command[0] == "streamrec"
    args = build_parser().parse_args(command[1:])
    assert args.command == "train" and args.warm_start
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert args.config.startswith(tuple(mounts))
