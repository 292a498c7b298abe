"""Deployment manifests and the dashboard must match the code: commands that exist, probes
on the served service, metrics that are exported."""

import json
import re
from pathlib import Path

import pyspark
import yaml

from streamrec.features.metrics import FeatureJobMetrics
from streamrec.infra.cli.main import build_parser
from streamrec.serving.metrics import ServingMetrics
from streamrec.serving.server import SERVICE_NAME

KUBERNETES = Path(__file__).resolve().parents[2] / "infra" / "deploy" / "kubernetes"
GRAFANA = Path(__file__).resolve().parents[2] / "infra" / "deploy" / "grafana"


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


def test_the_api_server_deployment_serves_probes_and_scales():
    documents = list(yaml.safe_load_all((KUBERNETES / "api-server.yaml").read_text()))
    kinds = {document["kind"]: document for document in documents}
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = build_parser().parse_args(container["command"][1:])
    assert args.command == "serve"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert str(ports["grpc"]) == env["STREAMREC_SERVING_PORT"]
    assert str(ports["metrics"]) == env["STREAMREC_SERVING_METRICS_PORT"]
    readiness = container["readinessProbe"]["grpc"]
    assert readiness == {"port": ports["grpc"], "service": SERVICE_NAME}
    assert (
        kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
        == (kinds["Deployment"]["metadata"]["name"])
    )
    assert {p["targetPort"] for p in kinds["Service"]["spec"]["ports"]} == set(ports)


def test_the_dashboard_queries_only_metrics_the_code_exports():
    dashboard = json.loads((GRAFANA / "streamrec-dashboard.json").read_text())
    queried = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"streamrec_[a-z0-9_]+", target["expr"])
    }
    exported = {
        metric.name
        for registry in (ServingMetrics().registry, FeatureJobMetrics().registry)
        for metric in registry.collect()
    }
    assert queried and queried <= exported, queried - exported


def test_the_spark_applications_submit_valid_feature_commands_with_a_driver_account():
    documents = list(yaml.safe_load_all((KUBERNETES / "feature-job-spark.yaml").read_text()))
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    account = by_kind["ServiceAccount"][0]["metadata"]["name"]
    binding = by_kind["RoleBinding"][0]
    assert binding["subjects"][0]["name"] == account
    assert binding["roleRef"]["name"] == by_kind["Role"][0]["metadata"]["name"]
    actions = set()
    for application in by_kind["SparkApplication"]:
        spec = application["spec"]
        assert spec["mode"] == "cluster" and spec["type"] == "Python"
        assert spec["sparkVersion"] == pyspark.__version__  # the Spark the image carries
        assert spec["mainApplicationFile"].endswith("/streamrec/infra/cli/__main__.py")
        assert spec["driver"]["serviceAccount"] == account
        args = build_parser().parse_args(spec["arguments"])
        mounts = {c["path"] for c in spec["driver"]["configMaps"]}
        assert args.command == "features" and args.config.startswith(tuple(mounts))
        actions.add(args.action)
    assert actions == {"run", "backfill"}
