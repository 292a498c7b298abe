"""The feature job: Kafka ``events`` -> point-in-time TFRecord examples + Redis user history.

One Spark Structured Streaming query reads the topic with :mod:`.event_source`. Each
micro-batch is one pass per Kafka partition (:mod:`.partition_task`: decode, deduplicate,
route late events, build and stage examples), then, on the driver, in this order:

1. commit the staged examples through the offline-examples port (the batch manifest);
2. trim the histories that grew to their capacity;
3. record the partitions' watermarks in the event ledger, and slide the item popularity
   windows to the newest of them;
4. once Redis's replicas have the batch's writes (``redis.min_replica_acks``, none by
   default), commit the batch's end offsets to the consumer group
   ``features.consumer_group``.

Only when all of it is durable does Spark record the batch in its checkpoint, so the next run
starts after it. A crash in between replays the batch with the same id and the same offsets,
and every step is idempotent under replay: claims and watermarks are recorded per batch, file
names depend on the batch, history entries are unique per event, and a batch whose manifest
exists is not written again. Only dead letters and late events may repeat.

While the query plans its first batch, Spark's Python workers are started beside it
(:mod:`.python_workers`). Between micro-batches the driver also applies new records of the
item catalog topic to the online store (:mod:`.item_catalog`).

A batch that fails because Kafka or Redis is unavailable is tried again, with backoff, until
the outage has lasted ``features.outage_budget_seconds`` (:mod:`.outage_budget`); a dead JVM
ends the worker at once (:class:`SparkGone`), so a supervisor restarts it.

With ``until_idle`` the job runs until everything published before it started is processed,
as Spark's checkpoint shows (:mod:`.query_checkpoint`), which also holds after a crash: the
replayed batch is processed first, then the rest, capped per batch like the continuous worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from py4j.protocol import Py4JError, Py4JJavaError, Py4JNetworkError
from pyspark.sql import DataFrame, SparkSession

from streamrec.features.event_source import SOURCE_NAME, check_not_behind, source_options
from streamrec.features.item_catalog import sync_item_catalog
from streamrec.features.metrics import FeatureJobMetrics
from streamrec.features.outage_budget import OutageBudget
from streamrec.features.partition_task import OUTPUT_DDL, PartitionOutcome, PartitionTask
from streamrec.features.python_workers import PythonWorkers
from streamrec.features.query_checkpoint import committed_offsets
from streamrec.infra.contracts.feature_spec import BatchManifest, batch_name
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StoreUnavailable, StreamrecError
from streamrec.infra.storage import (
    open_event_bus,
    open_event_ledger,
    open_offline_examples,
    open_online_store,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchReport:
    batch_id: int
    events: int  # records read
    accepted: int  # events that became examples and history
    rejected: int  # to the dead-letter topic
    late: int  # to the late topic
    duplicates: int  # dropped: the event was accepted before
    examples: int
    seconds: float
    phases: dict[str, float]  # seconds spent in each step of the batch
    warnings: tuple[str, ...] = ()  # what an operator should know, one line each

    def describe(self) -> str:
        return (
            f"batch {self.batch_id}: {self.events} events, {self.accepted} accepted -> "
            f"{self.examples} examples, "
            f"{self.rejected} rejected, {self.late} late, {self.duplicates} duplicates "
            f"({self.seconds:.1f}s)"
        )


class FeatureJob:
    """The feature-worker role: one streaming query over the events topic."""

    def __init__(
        self,
        config: Config,
        spark: SparkSession,
        metrics: FeatureJobMetrics | None = None,
        on_batch: Callable[[BatchReport], object] | None = None,
    ) -> None:
        """``on_batch`` is called with each committed batch's report (the CLI prints it)."""
        self.config = config
        self.spark = spark
        self.metrics = metrics
        self.on_batch = on_batch
        self._warnings: list[str] = []  # for the next committed batch's report
        self.bus = open_event_bus(config)
        self.examples = open_offline_examples(config)
        self.online_store = open_online_store(config)
        self.ledger = open_event_ledger(config)
        self.outage = OutageBudget(config.features.outage_budget_seconds)
        self._ledger_expected = False  # the ledger should hold watermarks by now
        self.reports: list[BatchReport] = []
        self.items_read = 0  # item records applied to the catalog
        self.seconds = 0.0  # the last run's duration, from the query's start
        self.workers: PythonWorkers | None = None  # started ahead of the last run's query

    def run(self, until_idle: bool) -> list[BatchReport]:
        """Processes the topic; with ``until_idle``, stops once it has caught up.

        Batches hold at most ``features.max_events_per_batch`` events; the continuous worker
        looks for new events every ``features.trigger_seconds``. Raises SparkGone at once if
        the JVM dies, so that a supervisor restarts the worker rather than leaving it idle.
        """
        started = time.monotonic()
        interval = self.config.features.trigger_seconds
        self._ledger_expected = bool(committed_offsets(self.config.features_checkpoint_dir))
        topic = self.config.kafka.events_topic
        ends = self.outage.run(lambda: self.bus.end_offsets(topic), "reading the topic's ends")
        done = committed_offsets(self.config.features_checkpoint_dir)
        check_not_behind(topic, {str(p): n for p, n in done.items()},
                         {str(p): n for p, n in ends.items()})  # fmt: skip
        target = ends if until_idle else None
        self.workers = PythonWorkers(self.spark).start()
        query = (
            self.spark.readStream.format(SOURCE_NAME)
            .options(**source_options(self.config))
            .load()
            .writeStream.foreachBatch(self._process_batch)
            .option("checkpointLocation", str(self.config.features_checkpoint_dir))
            .queryName("streamrec-features")
            .trigger(processingTime=f"{0 if until_idle else interval} seconds")
            .start()
        )
        with _stop_requested() as stop, _spark_failures(stop):
            try:
                # Short waits keep the main thread free to notice SIGTERM/SIGINT.
                while not stop.is_set() and not query.awaitTermination(0.5):
                    self._sync_item_catalog()
                    if target is not None and self._caught_up(query, target):
                        break
            finally:
                with _unless_spark_gone():
                    query.stop()  # an interrupted batch is not committed; a replay redoes it
                    self.workers.wait()
                self.seconds = time.monotonic() - started
        return self.reports

    def _sync_item_catalog(self) -> None:
        try:
            self.items_read += sync_item_catalog(self.config, self.bus, self.online_store)
        except StoreUnavailable as exc:  # tried again on the next turn of the loop
            self.outage.failed(exc, "item catalog sync")
        else:
            self.outage.succeeded("item catalog sync")

    def _caught_up(self, query: object, target: dict[int, int]) -> bool:
        """Whether Spark's checkpoint has committed batches up to ``target`` (see
        :mod:`.query_checkpoint` for why not the consumer group)."""
        if query.status["isTriggerActive"]:  # let a running batch finish and be checkpointed
            return False
        done = committed_offsets(self.config.features_checkpoint_dir)
        return all(done.get(partition, 0) >= end for partition, end in target.items())

    def _process_batch(self, records: DataFrame, batch_id: int) -> None:
        """One micro-batch, tried again while Kafka or Redis is unavailable (within
        ``features.outage_budget_seconds``): every step is idempotent under replay."""
        self.outage.run(lambda: self._process_batch_once(records, batch_id), f"batch {batch_id}")

    def _process_batch_once(self, records: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        phases: dict[str, float] = {}
        self._warn_if_ledger_lost(batch_id)
        with _timed(phases, "tasks"):
            committed = self.examples.manifest(batch_name(batch_id))  # replaying a committed one
            task = PartitionTask(self.config, batch_id, write_examples=committed is None)
            rows = records.mapInArrow(task, OUTPUT_DDL).collect()
        outcomes = [PartitionOutcome.from_json(row.outcome) for row in rows]
        if unavailable := [o.unavailable for o in outcomes if o.unavailable]:
            raise StoreUnavailable(unavailable[0])
        with _timed(phases, "commit"):
            if committed is None:
                committed = self._commit_examples(batch_id, outcomes)
        with _timed(phases, "history"):
            self.online_store.trim_histories(u for outcome in outcomes for u in outcome.users)
        with _timed(phases, "offsets"):
            topic = self.config.kafka.events_topic
            watermarks = {o.partition: o.watermark for o in outcomes if o.watermark is not None}
            self.ledger.record_watermarks(topic, batch_id, watermarks)
            newest = max(self.ledger.watermarks(topic, batch_id + 1).values(), default=None)
            if newest is not None:
                self.online_store.advance_item_windows(newest)
            ends = {o.partition: o.last_offset + 1 for o in outcomes}
            self.online_store.replicated()
            self.ledger.replicated()
            self.bus.commit_offsets(self.config.features.consumer_group, topic, ends)
            # Only a finished batch: a retried one would find its own watermarks missing.
            self._ledger_expected = self._ledger_expected or newest is not None
        report = BatchReport(
            batch_id,
            events=sum(o.records for o in outcomes),
            accepted=sum(o.accepted for o in outcomes),
            rejected=sum(o.rejected for o in outcomes),
            late=sum(o.late for o in outcomes),
            duplicates=sum(o.duplicates for o in outcomes),
            examples=committed.examples,
            seconds=time.monotonic() - started,
            phases=phases,
        )
        if report.late > LATE_WARNING_SHARE * report.events:
            self._warnings.append(late_warning(report, self.config.features.dedup_horizon_hours))
        report = dataclasses.replace(report, warnings=tuple(self._warnings))
        self._warnings.clear()
        self.reports.append(report)
        log.info("%s; phases %s", report.describe(), phases)
        for warning in report.warnings:  # on_batch says them; the log keeps them too
            log.info("%s", warning)
        if self.on_batch is not None:
            self.on_batch(report)
        if self.metrics is not None:
            self._record_metrics(report, outcomes)

    def _warn_if_ledger_lost(self, batch_id: int) -> None:
        """One line when the ledger's watermarks are gone although batches were committed:
        Redis lost its data, and with it the histories and claims of earlier events."""
        if not self._ledger_expected:
            return
        if self.ledger.watermarks(self.config.kafka.events_topic, batch_id):
            return
        self._ledger_expected = False  # said once per loss
        self._warnings.append(LEDGER_LOST_WARNING)

    def _record_metrics(self, report: BatchReport, outcomes: list[PartitionOutcome]) -> None:
        counts = {
            "accepted": report.accepted,
            "rejected": report.rejected,
            "late": report.late,
            "duplicate": report.duplicates,
        }
        latencies = [s for outcome in outcomes for s in outcome.publish_to_redis_seconds]
        self.metrics.record_batch(counts, report.examples, report.seconds, report.phases, latencies)
        group, topic = self.config.features.consumer_group, self.config.kafka.events_topic
        try:
            self.metrics.record_lag(
                self.bus.end_offsets(topic), self.bus.committed_offsets(group, topic)
            )
        except StoreUnavailable as exc:  # the batch is done; its lag can wait for the next
            log.warning("consumer lag not measured: %s", exc)

    def _commit_examples(self, batch_id: int, outcomes: list[PartitionOutcome]) -> BatchManifest:
        staged = [file for outcome in outcomes for file in outcome.files]
        files = [file.example_file(batch_name(batch_id)) for file in staged]
        manifest = BatchManifest(
            batch_id=batch_id,
            files=tuple(sorted(files, key=lambda f: f.path)),
            source={str(o.partition): [o.first_offset, o.last_offset] for o in outcomes},
            committed_at_ms=int(time.time() * 1000),
        )
        staged_paths = {f.path: s.staged for f, s in zip(files, staged, strict=True)}
        self.examples.commit(manifest, staged_paths)
        return manifest


LEDGER_LOST_WARNING = (
    "warning: the event ledger in Redis is empty although this job has committed batches: "
    "Redis lost its data (restarted without persistence, flushed, or failed over). New events "
    "are processed as usual, but the histories, item windows and duplicate claims of earlier "
    "events are gone until `streamrec features rebuild-online` restores them"
)
LATE_WARNING_SHARE = 0.01  # of a batch's events late: more than stragglers


def late_warning(report: BatchReport, horizon_hours: float) -> str:
    """One line for a batch with many late events: what they are, the likely cause, the knob."""
    return (
        f"warning: {report.late / report.events:.1%} of batch {report.batch_id}'s events were "
        f"late (more than features.dedup_horizon_hours = {horizon_hours:g}h older than their "
        f"user's newest event): the source is likely not in time order per user; publish each "
        f"user's events in time order, or raise features.dedup_horizon_hours"
    )


@contextlib.contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    phases[name] = round(time.monotonic() - started, 3)


class SparkGone(StreamrecError):
    """The worker's JVM (Spark's driver) is gone: nothing more can run in this process."""


def _jvm_gone(exc: BaseException) -> bool:
    """py4j's errors of its own, not a Java exception it carried: the gateway is broken."""
    if isinstance(exc, (Py4JNetworkError, ConnectionError)):
        return True
    return isinstance(exc, Py4JError) and not isinstance(exc, Py4JJavaError)


@contextlib.contextmanager
def _spark_failures(stop: threading.Event) -> Iterator[None]:
    """What Spark raises while the worker is being stopped is the stop; a dead JVM otherwise
    becomes SparkGone, one line with the cause kept.

    A supervisor that stops a whole process group (systemd's default, a terminal's Ctrl-C)
    signals the JVM as well, which shuts Spark down while the driver is still waiting on it.
    """
    try:
        yield
    except Exception as exc:
        if stop.wait(1.0):  # the signal may reach the JVM a moment before this process
            log.info("Spark went down with the stop request: %s", _first_line(exc))
            return
        if _jvm_gone(exc):
            raise SparkGone(
                f"the feature worker's Spark driver (JVM) is gone ({type(exc).__name__}: "
                f"{_first_line(exc)}); exiting so that a supervisor restarts it (the "
                "interrupted batch is replayed)"
            ) from exc
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


@contextlib.contextmanager
def _unless_spark_gone() -> Iterator[None]:
    """Runs a clean-up step that needs the JVM, skipping it once the JVM is gone or shut
    down by a stop request."""
    try:
        yield
    except (Py4JError, ConnectionError) as exc:
        log.info("skipped a clean-up step, Spark is gone: %s", _first_line(exc))


@contextlib.contextmanager
def _stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while inside, so a stop request ends the job cleanly."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
