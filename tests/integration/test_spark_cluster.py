"""The feature job and a backfill on a Spark standalone master with two workers.

Their tasks run in executor JVMs started by the workers, not in the driver, so anything the
job kept only in the driver would be missing there. What they write must be what the same job
writes on the local session; the feature job writes to an S3 bucket, as on a cluster with no
shared disk.
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import streamrec.infra.cli
from streamrec.features.backfill import run_backfill
from streamrec.features.examples import event_date
from streamrec.features.job import FeatureJob
from streamrec.infra.storage import open_event_bus, open_offline_examples, open_online_store
from streamrec.infra.storage.adapters.storage_root import StorageRoot
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from tests.engines.spark_standalone import SPARK_HOME, SparkStandalone
from tests.integration.conftest import namespaced
from tests.integration.offline_examples import committed_records

pytestmark = pytest.mark.cluster

EVENTS = generate(SyntheticSpec(users=40, items=50, events=2000, seed=17, days=6))
DATES = sorted({event_date(e.timestamp) for e in EVENTS})
MAIN = Path(streamrec.infra.cli.__file__).with_name("__main__.py")  # what spark-submit runs


@pytest.fixture(scope="module")
def spark_cluster(s3_server, tmp_path_factory):
    """Started after the S3 server: its executors inherit the endpoint and credentials."""
    cluster = SparkStandalone(tmp_path_factory.mktemp("spark-standalone")).up()
    yield cluster
    cluster.down()


def _published(stack, tmp_path, name, master="local[2]"):
    config = namespaced(stack, tmp_path / name)
    config = dataclasses.replace(config, spark=dataclasses.replace(config.spark, master=master))
    bus = open_event_bus(config)
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        bus.ensure_topic(topic)
    publish(config, EVENTS, progress=False)
    return config


def _files(config):
    return {
        Path(f.path).name: Path(f.path).read_bytes() for f in open_offline_examples(config).files()
    }


def _ran_on_both_workers(cluster, app_name):
    """The app's id, once the master lists it as finished with an executor on each worker."""
    apps = [a for a in cluster.state()["completedapps"] if a["name"] == app_name]
    assert len(apps) == 1, f"the master ran {len(apps)} {app_name!r} apps"
    workers = {d.parent.parent.name for d in cluster.executor_dirs(apps[0]["id"])}
    assert workers == {"worker-0", "worker-1"}
    return apps[0]["id"]


def test_the_feature_job_on_a_standalone_cluster_writes_what_the_local_session_writes(
    stack, spark, spark_cluster, s3_bucket, run_cli, tmp_path
):
    local = _published(stack, tmp_path, "local")
    FeatureJob(local, spark).run(until_idle=True)
    remote = _published(stack, tmp_path, "remote", master=spark_cluster.master_url)
    remote = dataclasses.replace(
        remote,
        offline_examples=dataclasses.replace(
            remote.offline_examples, path=f"{s3_bucket}/examples",
            cache_dir=str(tmp_path / "cache"),
        ),
    )  # fmt: skip
    done = run_cli.run(remote, "features", "run", "--until-idle", "--json")
    assert done.returncode == 0, done.stderr[-2000:]

    _ran_on_both_workers(spark_cluster, "streamrec-features")
    assert len(committed_records(remote)) >= len(EVENTS) // 20  # sequences of many events each
    assert committed_records(remote) == committed_records(local)
    named = {f.path for m in open_offline_examples(remote).manifests() for f in m.files}
    objects = StorageRoot(remote.examples_location).find("")
    assert {o for o in objects if not o.startswith("_manifests/")} == named  # no strays
    assert not (tmp_path / "remote" / "examples").exists()
    users = sorted({e.user_id for e in EVENTS})
    local_store, remote_store = open_online_store(local), open_online_store(remote)
    assert [remote_store.recent_items(u, 50) for u in users] == [
        local_store.recent_items(u, 50) for u in users
    ]
    # Decayed counts summed in another order: equal to the last bits of a float.
    frequencies = dict(local_store.item_frequencies().items)
    assert dict(remote_store.item_frequencies().items) == pytest.approx(frequencies, rel=1e-12)


def test_a_backfill_submitted_with_spark_submit_is_byte_identical_to_the_local_one(
    stack, spark, spark_cluster, run_cli, tmp_path
):
    local = _published(stack, tmp_path, "local")
    run_backfill(local, spark, DATES[0], DATES[-1])
    remote = _published(stack, tmp_path, "remote")  # local[2] in its file: submit's master wins
    submit = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", spark_cluster.master_url]
    env = run_cli.env(remote) | spark_cluster.environment() | {"PYSPARK_PYTHON": sys.executable}
    backfill = ["features", "backfill", "--start", DATES[0], "--end", DATES[-1]]
    done = subprocess.run(
        [*submit, str(MAIN), *backfill], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]

    _ran_on_both_workers(spark_cluster, "streamrec-backfill")
    files = _files(local)
    assert files and _files(remote) == files
