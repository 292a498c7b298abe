"""``streamrec bench ingest``: ingestion and the feature job, each beside raw Kafka, in one run.

On this shared machine absolute rates drift from run to run, so every figure comes with its
baseline measured minutes apart in the same run: our publisher against a bare kafka-python
producer sending the same keyed messages with ``acks=all``, and the feature job against a bare
kafka-python consumer reading the same topic.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streamrec.infra.contracts.events import Event
from streamrec.infra.core.config import Config
from streamrec.infra.devstack.scratch_run import ScratchRun
from streamrec.infra.devstack.stack import embedded_services
from streamrec.infra.devstack.stage_process import stop_process
from streamrec.infra.storage import open_event_bus, open_online_store
from streamrec.infra.storage.adapters.kafka_event_bus import client_settings
from streamrec.ingest import EventProducer
from streamrec.ingest.event_file import write_events
from streamrec.ingest.publisher import publish_file
from streamrec.ingest.synthetic import SyntheticSpec, generate, in_user_blocks


@dataclasses.dataclass(frozen=True)
class IngestBenchmark:
    events: int = 1_000_000
    latency_seconds: float = 20.0
    latency_rate: int = 2000  # steady input events/s while event-to-Redis latency is measured
    order: str = "time"  # or "user": in user blocks, heavy users first (a warehouse dump)


def run_ingest_benchmark(config: Config, bench: IngestBenchmark, say: Callable) -> dict:
    run = ScratchRun.create(config, "bench-ingest")
    with embedded_services(config), run.discarded_afterwards(say):
        return _measure(run, bench, say)


def _measure(run: ScratchRun, bench: IngestBenchmark, say: Callable) -> dict:
    config, n = run.config, bench.events
    say(f"generating {n} synthetic events")
    users = max(1000, n // 50)
    sample = generate(SyntheticSpec(users=users, items=max(1000, n // 200), events=n, seed=1))
    if bench.order == "user":
        sample = in_user_blocks(sample)
    path = run.run_dir / "events.jsonl"
    write_events(path, sample)
    results: dict[str, object] = {"events": n, "order": bench.order}
    say("raw kafka-python producer (keyed, acks=all)")
    results["raw_produce_events_per_s"] = _raw_produce(config, sample, run.side_topic("raw"))
    say("streamrec events publish (validation included)")
    results["publish_events_per_s"] = n / _seconds(lambda: publish_file(config, path))
    say("EventProducer client (validation included)")
    client_topic = run.side_topic("client")
    results["producer_client_events_per_s"] = _producer_client(config, sample, client_topic)
    del sample
    say("raw kafka-python consumer")
    results["raw_consume_events_per_s"] = _raw_consume(config, n)
    say("feature job --until-idle (Kafka -> TFRecords + Redis)")
    results.update(_feature_job(run, n))
    say(f"event -> Redis latency at {bench.latency_rate} events/s")
    results.update(_event_to_redis(run, bench))
    return with_ratios(results)


def with_ratios(results: dict) -> dict:
    """``results`` with each rate beside its raw baseline, floats rounded to 4 places."""
    ratios = {
        f"{name}_vs_raw_produce": results[f"{name}_events_per_s"]
        / results["raw_produce_events_per_s"]
        for name in ("publish", "producer_client")
    }
    ratios["job_vs_raw_consume"] = results["job_events_per_s"] / results["raw_consume_events_per_s"]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in (results | ratios).items()}


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _raw_produce(config: Config, sample: list[Event], topic: str) -> float:
    open_event_bus(config).ensure_topic(topic)
    messages = [(e.user_id.encode(), e.to_json_bytes()) for e in sample]
    producer = KafkaProducer(**client_settings(config), acks="all")

    def send_all() -> None:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush()

    try:
        return len(messages) / _seconds(send_all)
    finally:
        producer.close()


def _producer_client(config: Config, sample: list[Event], topic: str) -> float:

    def send_all() -> None:
        with EventProducer(config, topic=topic) as producer:
            for event in sample:
                producer.send(event)
            failed = producer.flush()
        if failed:
            raise RuntimeError(f"{len(failed)} events were not acknowledged")

    return len(sample) / _seconds(send_all)


def _raw_consume(config: Config, expected: int) -> float:
    consumer = KafkaConsumer(**client_settings(config), enable_auto_commit=False)
    topic = config.kafka.events_topic
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    seen = 0

    def read_all() -> None:
        nonlocal seen
        while seen < expected:
            seen += sum(len(records) for records in consumer.poll(timeout_ms=1000).values())

    try:
        return expected / _seconds(read_all)
    finally:
        consumer.close()


def _feature_job(run: ScratchRun, n: int) -> dict:
    """The feature worker as an operator runs it: its own process, Spark and all."""
    for topic in (run.config.kafka.dead_letter_topic, run.config.kafka.late_topic):
        open_event_bus(run.config).ensure_topic(topic)
    result = run.stages.run("features", ["features", "run", "--until-idle", "--json"], echo=False)
    summary = json.loads(result.output[-1])
    if summary["accepted"] != n:
        raise RuntimeError(f"the feature job accepted {summary['accepted']} of {n} events")
    return {
        "job_events_per_s": n / summary["seconds"],
        # Batches back to back, without the query's start (planning in Spark's Python workers).
        "job_sustained_events_per_s": n / summary["batch_seconds"],
        "job_with_spark_start_events_per_s": n
        / (summary["seconds"] + summary["spark_start_seconds"]),
        "job_spark_start_s": summary["spark_start_seconds"],
        "job_batches": summary["batches"],
        "job_late": summary["late"],
    }


def _event_to_redis(run: ScratchRun, bench: IngestBenchmark) -> dict:
    worker = run.stages.start("features-worker", ["features", "run"])
    try:
        probe = _LatencyProbe(run.config)
        probe.wait_until_ready(timeout=180)
        latencies = probe.measure(bench.latency_rate, bench.latency_seconds)
    finally:
        stop_process(worker)
    latencies.sort()
    return {
        "event_to_redis_p50_s": statistics.median(latencies),
        "event_to_redis_p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "event_to_redis_samples": len(latencies),
    }


class _LatencyProbe:
    """Sends a steady stream plus probe events, and times each probe until it is in Redis."""

    def __init__(self, config: Config) -> None:
        self.topic = config.kafka.events_topic
        self.producer = KafkaProducer(**client_settings(config), acks="all", linger_ms=0)
        self.store = open_online_store(config)
        self.run_id = uuid.uuid4().hex[:8]
        self.sent: dict[str, float] = {}
        self.seen: dict[str, float] = {}

    def wait_until_ready(self, timeout: float) -> None:
        """Waits for the worker's first batch, so Spark's start-up is not counted."""
        user = self._send_probe()
        deadline = time.monotonic() + timeout
        while not self.store.recent_items(user, 1):
            if time.monotonic() > deadline:
                raise RuntimeError("the feature worker processed nothing within the timeout")
            time.sleep(0.1)
        self.sent.clear()

    def measure(self, rate: int, seconds: float) -> list[float]:
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(stop,), daemon=True)
        watcher.start()
        tick, sent, started = 0.01, 0, time.monotonic()
        last_probe = started
        while (now := time.monotonic()) - started < seconds:
            while sent < rate * (now - started):  # keep to the rate, whatever sleep() does
                sent += 1
                self._send(f"load-{self.run_id}-{sent % 5000}", sent)
            if now - last_probe >= 0.1:  # ten probes a second
                self._send_probe()
                last_probe = now
            time.sleep(tick)
        self.producer.flush()
        time.sleep(3)  # the last probes' batch
        stop.set()
        watcher.join()
        return [self.seen[user] - sent for user, sent in self.sent.items() if user in self.seen]

    def _send_probe(self) -> str:
        user = f"probe-{self.run_id}-{len(self.sent)}"
        self.sent[user] = time.monotonic()
        self._send(user, len(self.sent))
        return user

    def _send(self, user: str, n: int) -> None:
        event = Event(f"{user}-{n}", user, f"i-{n % 1000}", "view", int(time.time() * 1000))
        self.producer.send(self.topic, key=user.encode(), value=event.to_json_bytes())

    def _watch(self, stop: threading.Event) -> None:
        while not stop.is_set():
            for user in [u for u in list(self.sent) if u not in self.seen]:
                if self.store.recent_items(user, 1):
                    self.seen[user] = time.monotonic()
            time.sleep(0.005)
