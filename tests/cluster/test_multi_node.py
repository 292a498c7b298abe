"""The multi-node proof: every part of streamrec in its own process, sharing no local directory.

A Spark master and two workers, an S3-compatible server holding the examples and the models,
a three-master Redis Cluster, the broker, a trainer of two workers (``TF_CONFIG``) and two
serving replicas, each with its own cache. The flow is the demo's: publish, features on the
cluster, train, publish the version to the bucket, serve; then one replica is killed -9 under
load, and a new version is promoted while both serve. An operator's ``evaluate`` writes its
report into the bucket, beside the version.
"""

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_model_registry, open_online_store
from streamrec.infra.storage.adapters.storage_root import StorageRoot
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate, generate_items
from streamrec.serving.client import RecommendationClient
from streamrec.training.export import export_catalog
from tests.conftest import free_port
from tests.engines.redis_cluster import RedisCluster
from tests.engines.spark_standalone import SparkStandalone
from tests.integration.conftest import namespaced

pytestmark = pytest.mark.cluster

SPEC = SyntheticSpec(users=150, items=120, events=9000, seed=21)


@pytest.fixture
def engines(s3_server, tmp_path):
    """The Redis Cluster and the Spark cluster; the S3 server is the session's."""
    redis_cluster = RedisCluster(tmp_path / "redis").up()
    spark = SparkStandalone(tmp_path / "spark").up()  # executors get the S3 settings from it
    yield redis_cluster, spark
    spark.down()
    redis_cluster.down()


def _deployment(stack: Config, tmp_path, bucket: str, redis_cluster, spark) -> Config:
    config = namespaced(stack, tmp_path / "driver")
    return dataclasses.replace(
        config,
        redis=dataclasses.replace(config.redis, mode="cluster", url=redis_cluster.url),
        spark=dataclasses.replace(config.spark, master=spark.master_url),
        offline_examples=dataclasses.replace(
            config.offline_examples, path=f"{bucket}/examples", cache_dir=""
        ),
        training=dataclasses.replace(
            config.training, model_dir=f"{bucket}/models", epochs=6, embedding_dim=32,
            batch_size=64,
        ),
        serving=dataclasses.replace(config.serving, processes=1, reload_seconds=0.5),
    )  # fmt: skip


def _on_machine(config: Config, tmp_path, name: str, **serving) -> Config:
    """``config`` for a process with a disk of its own: its own caches and state."""
    disk = tmp_path / name
    return dataclasses.replace(
        config,
        stack=dataclasses.replace(config.stack, state_dir=str(disk / "state")),
        offline_examples=dataclasses.replace(
            config.offline_examples, cache_dir=str(disk / "examples")
        ),
        model_registry=dataclasses.replace(config.model_registry, cache_dir=str(disk / "models")),
        serving=dataclasses.replace(config.serving, **serving),
    )


class Traffic:
    """One client calling Recommend round-robin over both replicas, back to back."""

    def __init__(self, targets: str, users: list[str]) -> None:
        self.versions: list[int] = []
        self.errors: list[str] = []
        self._client = RecommendationClient(targets, timeout_seconds=5)
        self._users = users
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self._client.close()

    def calls(self) -> int:
        return len(self.versions) + len(self.errors)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                reply = self._client.recommend(self._users[n % len(self._users)], 10)
                self.versions.append(reply.model_version)
            except Exception as exc:  # every failure counts
                self.errors.append(str(exc))
            n += 1


def _serves(port: int, version: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with RecommendationClient(f"127.0.0.1:{port}", timeout_seconds=2) as client:
        while time.monotonic() < deadline:
            try:
                if client.recommend("anyone", 1).model_version == version:
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.3)
    raise AssertionError(f"the replica on port {port} never served version {version}")


def _train_on_two_workers(run_cli, config, tmp_path) -> list[str]:
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = []
    for index in (0, 1):
        machine = _on_machine(config, tmp_path, f"trainer-{index}")
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = run_cli.env(machine, TF_CONFIG=json.dumps(task))
        workers.append(run_cli.start(machine, "train", env=env))
    outputs = [worker.communicate(timeout=1200)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [o[-3000:] for o in outputs]
    return outputs


def test_every_part_in_its_own_process_with_no_shared_disk(
    stack, s3_server, engines, run_cli, tmp_path
):
    redis_cluster, spark = engines
    bucket = s3_server.bucket("streamrec-cluster")
    config = _deployment(stack, tmp_path, bucket, redis_cluster, spark)
    events = generate(SPEC)
    publish(config, events, progress=False)
    open_online_store(config).put_items(generate_items(SPEC))

    features = run_cli.run(_on_machine(config, tmp_path, "driver"), "features", "run",
                           "--until-idle")  # fmt: skip
    assert features.returncode == 0, features.stderr[-3000:]
    apps = spark.state()["completedapps"] + spark.state()["activeapps"]
    assert apps, "the feature job did not run on the Spark cluster"

    outputs = _train_on_two_workers(run_cli, config, tmp_path)
    assert "exported model version 1" in outputs[0]
    registry = open_model_registry(_on_machine(config, tmp_path, "operator"))
    version = registry.version(1)
    figures = version.metadata()["evaluation"]["models"]
    assert version.metadata()["fit"]["replicas"] == 2
    recall = {name: figures[name]["recall@10"] for name in ("candidate", "most_popular", "ease")}
    assert recall["candidate"] > max(1.5 * recall["most_popular"], recall["ease"]), recall
    if registry.current() is None:
        registry.promote(1, "the multi-node run")
    evaluated = run_cli.run(_on_machine(config, tmp_path, "operator"), "evaluate", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = StorageRoot(config.model_location).find("1/evaluation")  # beside the version
    assert sorted(name.rsplit("/", 1)[-1] for name in report) == ["evaluation.json", "report.html"]

    ports = [free_port(), free_port()]
    replicas = [_on_machine(config, tmp_path, f"replica-{n}", port=p) for n, p in enumerate(ports)]
    servers = [run_cli.start(r, "serve", stdout=subprocess.DEVNULL) for r in replicas]
    try:
        for port in ports:
            _serves(port, 1)
        users = sorted({e.user_id for e in events})
        with Traffic(",".join(f"127.0.0.1:{p}" for p in ports), users) as traffic:
            time.sleep(2)
            os.killpg(servers[0].pid, signal.SIGKILL)  # a replica's node is lost
            servers[0].wait()
            before = traffic.calls()
            time.sleep(3)
            assert traffic.calls() > before + 20  # the survivor answers them all
            servers[0] = run_cli.start(replicas[0], "serve", stdout=subprocess.DEVNULL)
            _serves(ports[0], 1)

            base = registry.version(1)
            ids = base.item_ids_file.read_text().splitlines()
            grown = export_catalog(registry, base, ids, np.load(base.item_embeddings_file), None,
                                   {"type": "exact"})  # fmt: skip
            registry.promote(grown.version, "v2 while both replicas serve")
            for port in ports:
                _serves(port, 2)
            time.sleep(1)
        assert traffic.errors == [], traffic.errors[:5]
        assert traffic.versions[-10:] == [2] * 10
    finally:
        for server in servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    for n in range(2):  # each replica served from its own copies, not a shared directory
        assert (tmp_path / f"replica-{n}" / "models" / "2" / "checksums.json").is_file()
    assert not (tmp_path / "driver" / "examples").exists()
