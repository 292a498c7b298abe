"""The feature job against the real broker, Redis and a local Spark session."""

import dataclasses
import gc
import json
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streamrec.features.job import FeatureJob
from streamrec.features.python_workers import PythonWorkers
from streamrec.features.tfrecord import decode_example, read_records
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.events import Event
from streamrec.infra.core.config import load_config
from streamrec.infra.devstack.stack import LocalStack
from streamrec.infra.devstack.stage_process import cli_command
from streamrec.infra.storage import open_event_bus, open_offline_examples, open_online_store
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from tests.conftest import free_port

pytestmark = pytest.mark.slow  # Spark streaming queries over the real broker and Redis

EVENTS = generate(SyntheticSpec(users=25, items=40, events=500, seed=11))
FIRST, SECOND = EVENTS[:300], EVENTS[300:]
MALFORMED = [
    (b"u-x", b"\xff not json"),
    (b"u-x", b'{"event_id": "bad-1", "user_id": "u-x"}'),
    (
        b"u-x",
        json.dumps(
            {**EVENTS[0].to_dict(), "event_id": "bad-2", "timestamp": 1_767_571_200}
        ).encode(),
    ),
]


def _reference_histories(events, length):
    """Each event's expected history: the user's earlier items, strictly before, newest first."""
    by_user = defaultdict(list)
    for event in sorted(events, key=lambda e: e.timestamp):
        by_user[event.user_id].append(event)
    histories = {}
    for user_events in by_user.values():
        for n, event in enumerate(user_events):
            earlier = [e.item_id for e in user_events[:n] if e.timestamp < event.timestamp]
            histories[event.event_id] = earlier[::-1][:length]
    return histories


def _examples(config):
    found = {}
    for file in open_offline_examples(config).files():
        for record in read_records(file.path):
            example = decode_example(record)
            event_id = example[spec.EVENT_ID][0].decode()
            assert event_id not in found, f"duplicate example for {event_id}"
            found[event_id] = example
    return found


def _letters(config, topic):
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    letters = []
    while batch := consumer.poll(timeout_ms=2000):
        letters += [json.loads(r.value) for rows in batch.values() for r in rows]
    consumer.close()
    return letters


def _publish_raw(config, records):
    producer = KafkaProducer(bootstrap_servers=config.kafka_bootstrap, acks="all")
    for key, value in records:
        producer.send(config.kafka.events_topic, key=key, value=value)
    producer.flush()
    producer.close()


@pytest.fixture
def job_config(config):
    """The per-event layout: these tests read each event's example and history."""
    config = dataclasses.replace(
        config, features=dataclasses.replace(config.features, example_layout="events")
    )
    bus = open_event_bus(config)
    bus.ensure_topic(config.kafka.events_topic)
    bus.ensure_topic(config.kafka.dead_letter_topic)
    return config


def test_examples_history_and_dead_letters_then_only_new_events(job_config, spark):
    config = job_config
    publish(config, FIRST, progress=False)
    _publish_raw(config, MALFORMED)

    job = FeatureJob(config, spark)
    reports = job.run(until_idle=True)
    assert sum(r.accepted for r in reports) == len(FIRST)
    assert sum(r.events for r in reports) == len(FIRST) + len(MALFORMED)
    assert len(job.workers.pids) == spark.sparkContext.defaultParallelism  # started alongside
    assert sum(r.rejected for r in reports) == len(MALFORMED)

    reference = _reference_histories(EVENTS, config.features.history_length)
    examples = _examples(config)
    assert set(examples) == {e.event_id for e in FIRST}
    for event in FIRST:
        example = examples[event.event_id]
        assert [h.decode() for h in example[spec.HISTORY]] == reference[event.event_id]
        assert example[spec.ITEM_ID] == [event.item_id.encode()]
        assert example[spec.TIMESTAMP] == [event.timestamp]

    letters = _letters(config, config.kafka.dead_letter_topic)
    assert len(letters) == 3
    reasons = " | ".join(sorted(letter["reason"] for letter in letters))
    assert (
        "not valid JSON" in reasons
        and "missing field(s)" in reasons
        and "looks like seconds" in reasons
    )
    assert {letter["value_encoding"] for letter in letters} == {"utf-8", "base64"}

    store = open_online_store(config)
    user = FIRST[-1].user_id
    expected = [e.item_id for e in sorted(FIRST, key=lambda e: e.timestamp) if e.user_id == user][
        ::-1
    ]
    assert store.recent_items(user, 50) == expected

    # Item popularity over the last day (whole hours, the window's buckets) and frequencies.
    newest, hour = max(e.timestamp for e in FIRST), 3_600_000
    live_from = (newest - 24 * hour) // hour + 1
    recent = Counter(e.item_id for e in FIRST if e.timestamp // hour >= live_from)
    popular = store.popular_items("1d", 1000)
    assert dict(popular.items) == {item: float(n) for item, n in recent.items()}
    assert popular.current_to == newest
    shares = dict(store.item_frequencies().items)
    assert set(shares) == {e.item_id for e in FIRST} and abs(sum(shares.values()) - 1) < 1e-9

    # Offsets are mirrored to the consumer group once the batch is durable.
    bus, topic = open_event_bus(config), config.kafka.events_topic
    committed = bus.committed_offsets(config.features.consumer_group, topic)
    assert committed == bus.end_offsets(topic)

    # Nothing new: nothing done.
    manifests = len(open_offline_examples(config).manifests())
    assert FeatureJob(config, spark).run(until_idle=True) == []
    assert len(open_offline_examples(config).manifests()) == manifests

    # New events: only they are processed, and their history reaches back into the first run.
    publish(config, SECOND, progress=False)
    reports = FeatureJob(config, spark).run(until_idle=True)
    assert sum(r.accepted for r in reports) == len(SECOND)
    examples = _examples(config)
    assert set(examples) == {e.event_id for e in EVENTS}
    for event in SECOND:
        assert [h.decode() for h in examples[event.event_id][spec.HISTORY]] == reference[
            event.event_id
        ]


def test_duplicates_across_batches_are_dropped_and_late_events_go_to_the_late_topic(
    job_config, spark
):
    config = dataclasses.replace(
        job_config, features=dataclasses.replace(job_config.features, dedup_horizon_hours=1)
    )
    open_event_bus(config).ensure_topic(config.kafka.late_topic)
    publish(config, FIRST, progress=False)
    said = []
    first = FeatureJob(config, spark, on_batch=said.append).run(until_idle=True)
    assert said == first and not any(r.warnings for r in first)  # nothing late

    newest = max(e.timestamp for e in FIRST)
    recent = [Event(f"r-{n}", FIRST[n].user_id, "i-new", "click", newest + n) for n in range(10)]
    publish(config, recent, progress=False)
    FeatureJob(config, spark).run(until_idle=True)

    again = recent[:5]  # the same events again, on their own partitions
    moved = [dataclasses.replace(e, user_id=e.user_id + "-x") for e in recent[5:]]  # elsewhere
    late = Event("late-1", FIRST[0].user_id, "i-late", "view", newest - 2 * 3_600_000)
    fresh = [Event(f"f-{n}", FIRST[n].user_id, "i-new", "view", newest + 100 + n) for n in range(3)]
    # Out of order but within the horizon: older than events of the previous batch.
    out_of_order = Event("ooo", FIRST[0].user_id, "i-ooo", "view", newest - 60_000)
    publish(config, [*again, *moved, late, *fresh, out_of_order], progress=False)
    reports = FeatureJob(config, spark).run(until_idle=True)

    assert sum(r.duplicates for r in reports) == len(again) + len(moved)
    assert sum(r.late for r in reports) == 1
    assert sum(r.accepted for r in reports) == len(fresh) + 1
    examples = _examples(config)  # raises on a duplicate example
    accepted = [*FIRST, *recent, *fresh, out_of_order]
    assert set(examples) == {e.event_id for e in accepted}
    reference = _reference_histories(accepted, config.features.history_length)
    for event_id in ("ooo", *(e.event_id for e in fresh)):
        assert [h.decode() for h in examples[event_id][spec.HISTORY]] == reference[event_id]

    (letter,) = _letters(config, config.kafka.late_topic)
    assert json.loads(letter["value"])["event_id"] == "late-1"
    assert f"more than 1h older than user '{FIRST[0].user_id}''s newest" in letter["reason"]
    # 1 of the batch's 15 events was late: the job says why that is likely and what governs it.
    (warning,) = [warning for report in reports for warning in report.warnings]
    assert warning.startswith("warning: ")
    assert "6.7% of batch" in warning and "not in time order per user" in warning
    assert "features.dedup_horizon_hours = 1h" in warning


def test_an_event_from_a_clock_years_ahead_goes_to_dead_letters_not_the_watermark(
    job_config, spark
):
    config = job_config
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        open_event_bus(config).ensure_topic(topic)
    years_ahead = int(time.time() * 1000) + 5 * 365 * 86_400_000
    wrong_clock = Event("ahead-1", FIRST[0].user_id, "i-x", "view", years_ahead)
    publish(config, [*FIRST[:100], wrong_clock, *FIRST[100:200]], progress=False)
    reports = FeatureJob(config, spark).run(until_idle=True)

    assert sum(r.accepted for r in reports) == 200  # none of the later events is late
    assert sum(r.late for r in reports) == 0 and sum(r.rejected for r in reports) == 1
    (letter,) = _letters(config, config.kafka.dead_letter_topic)
    assert json.loads(letter["value"])["event_id"] == "ahead-1"
    assert "min ahead of its publish time" in letter["reason"]


def test_a_batch_replayed_after_a_crash_changes_nothing(job_config, spark):
    config = job_config
    publish(config, EVENTS, progress=False)
    FeatureJob(config, spark).run(until_idle=True)
    before = _examples(config)
    files_before = sorted(p.name for p in Path(config.examples_dir).rglob("*.tfrecord"))
    history_key = spec.user_history_key(config.redis.key_prefix, EVENTS[-1].user_id)
    client = redis.Redis.from_url(config.redis_url)
    history_before = client.zrange(history_key, 0, -1, withscores=True)
    popular_before = open_online_store(config).popular_items("7d", 1000)

    # A crash after the outputs were written but before Spark recorded the batch as done:
    commits = sorted(
        (Path(config.features_checkpoint_dir) / "commits").glob("[0-9]*"), key=lambda p: int(p.name)
    )
    commits[-1].unlink()
    commits[-1].with_name(f".{commits[-1].name}.crc").unlink(missing_ok=True)

    reports = FeatureJob(config, spark).run(until_idle=True)
    assert [r.batch_id for r in reports] == [int(commits[-1].name)]  # the same batch, replayed
    assert _examples(config) == before
    assert sorted(p.name for p in Path(config.examples_dir).rglob("*.tfrecord")) == files_before
    assert client.zrange(history_key, 0, -1, withscores=True) == history_before
    assert open_online_store(config).popular_items("7d", 1000) == popular_before  # not twice
    assert not list(Path(config.examples_dir).glob("_staging/*"))


def test_redis_down_fails_the_batch_and_loses_nothing(job_config, spark, tmp_path, run_cli):
    own_redis = load_config(
        environ={
            "STREAMREC_STACK_STATE_DIR": str(tmp_path / "own"),
            "STREAMREC_STACK_REDIS_PORT": str(free_port()),
            "STREAMREC_KAFKA_BOOTSTRAP": job_config.kafka_bootstrap,
        }
    )
    config = dataclasses.replace(
        job_config,
        redis=dataclasses.replace(job_config.redis, url=own_redis.redis_url),
        # An outage longer than the budget fails the batch (test_worker_faults rides one out).
        features=dataclasses.replace(job_config.features, outage_budget_seconds=0),
    )
    publish(config, FIRST, progress=False)

    # Redis is down: the job refuses to start, with one line naming the problem.
    result = run_cli.run(config, "features", "run", "--until-idle")
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1].startswith("streamrec: error: Redis is unreachable")
    )

    # Redis goes away while a batch is running: the batch fails and is not recorded as done.
    redis_stack = LocalStack(own_redis)
    redis_stack.up()
    job = FeatureJob(config, spark)
    original_commit = job._commit_examples

    def commit_then_lose_redis(*args):
        committed = original_commit(*args)
        redis_stack.down()
        return committed

    job._commit_examples = commit_then_lose_redis
    with pytest.raises(Exception, match=r"(?i)redis|connection"):
        job.run(until_idle=True)
    assert not list((Path(config.features_checkpoint_dir) / "commits").glob("[0-9]*"))

    # Back up: the same batch is processed again, completely.
    redis_stack.up()
    try:
        reports = FeatureJob(config, spark).run(until_idle=True)
        assert [r.batch_id for r in reports] == [0]
        assert set(_examples(config)) == {e.event_id for e in FIRST}
        store = open_online_store(config)
        assert store.recent_items(FIRST[-1].user_id, 1) == [FIRST[-1].item_id]
    finally:
        redis_stack.down()


def test_continuous_worker_caps_batches_serves_metrics_and_stops_on_sigterm(
    job_config, tmp_path, run_cli
):
    metrics_port = free_port()
    config = dataclasses.replace(
        job_config, features=dataclasses.replace(job_config.features, metrics_port=metrics_port)
    )
    publish(config, FIRST, progress=False)
    command = ["features", "run", "--trigger-seconds", "1", "--max-events-per-batch", "120"]
    worker = subprocess.Popen(
        cli_command(command),
        env=run_cli.env(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def read_batches_until(total):
        sizes = []
        while sum(sizes) < total:
            line = worker.stdout.readline()
            assert line.startswith("batch "), line
            sizes.append(int(line.split(": ")[1].split()[0]))
        return sizes

    try:
        first = read_batches_until(len(FIRST))
        publish(config, SECOND, progress=False)  # arrives while the worker runs
        second = read_batches_until(len(SECOND))
        metrics = _scrape_until(
            metrics_port, lambda m: _lag(m) == 0 and _accepted(m) == len(EVENTS)
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    assert code == 0
    assert max(first + second) <= 120 and len(first) >= 3 and sum(first + second) == len(EVENTS)
    assert f"{len(first + second)} batch(es)" in worker.stdout.read()
    assert set(_examples(config)) == {e.event_id for e in EVENTS}
    assert _accepted(metrics) == len(EVENTS)
    assert metrics["streamrec_features_examples_total"] == len(EVENTS)
    assert metrics["streamrec_features_event_to_redis_seconds_count"] > 0
    assert metrics["streamrec_features_batch_seconds_count"] == len(first + second)
    lags = [k for k in metrics if k.startswith("streamrec_features_lag_events{")]
    assert len(lags) == config.kafka.partitions and _lag(metrics) == 0


def _accepted(metrics):
    return metrics.get('streamrec_features_events_total{outcome="accepted"}', 0)


def _lag(metrics):
    return sum(v for k, v in metrics.items() if k.startswith("streamrec_features_lag_events{"))


def _scrape_until(port, done, timeout=30):
    """The worker's metrics once ``done(metrics)`` holds (or the time is up)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        samples = {}
        for line in page.read().decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_the_session_writes_checkpoints_with_the_configured_file_manager(stack, spark):
    manager = spark.conf.get("spark.sql.streaming.checkpointFileManagerClass")
    assert manager == stack.spark.checkpoint_file_manager
    assert manager.endswith("FileSystemBasedCheckpointFileManager")


def _worker_pids(spark, tasks):
    """A job of ``tasks`` tasks, each reporting its worker's pid and frozen object count."""

    def report(batches):
        for _ in batches:
            yield pa.RecordBatch.from_pylist(
                [{"pid": os.getpid(), "frozen": gc.get_freeze_count()}]
            )

    return spark.range(tasks, numPartitions=tasks).mapInArrow(report, "pid long, frozen long")


def test_python_workers_fork_from_the_daemon_with_modules_loaded_and_frozen(spark):
    rows = _worker_pids(spark, 2).collect()
    assert len(rows) == 2 and all(row.frozen > 50_000 for row in rows)


def test_workers_started_ahead_serve_the_next_tasks(spark):
    workers = PythonWorkers(spark).start()
    workers.wait(timeout=120)
    slots = spark.sparkContext.defaultParallelism
    assert len(workers.pids) == slots and workers.seconds > 0
    later = {row.pid for row in _worker_pids(spark, slots).collect()}
    assert later <= set(workers.pids)
