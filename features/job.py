"""The feature job: Kafka ``events`` -> point-in-time TFRecord examples + Redis user history.

One Spark Structured Streaming query reads the topic with :mod:`.event_source` and handles
each micro-batch in :meth:`FeatureJob._process_batch`, in this order:

1. decode and validate every record against event schema v1; refused records go to the
   dead-letter topic with their reason (acknowledged before going on);
2. build point-in-time examples per user, history from the online store plus the batch;
3. write them through the TFRecord sink, whose manifest commits the batch;
4. append the batch's events to the online store;
5. mirror the batch's end offsets to the Kafka consumer group (for lag monitoring).

Only when all of it is durable does Spark record the batch in its checkpoint, so the next run
starts after it. A crash in between replays the batch with the same id, and every step above
is idempotent under replay except the dead letters, which may then repeat.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from streamrec.features.dead_letter import RejectedRecord, send_dead_letters
from streamrec.features.event_source import SOURCE_NAME, source_options
from streamrec.features.examples import point_in_time_examples
from streamrec.features.tfrecord_sink import SINK_NAME, sink_options
from streamrec.infra.config import Config
from streamrec.infra.contracts.events import InvalidEvent, parse_event
from streamrec.infra.errors import StoreUnavailable
from streamrec.infra.ports.online_store import HistoryEntry, OnlineStore
from streamrec.infra.stores import open_event_bus, open_offline_examples, open_online_store

log = logging.getLogger(__name__)
_BUCKETS_PER_PARTITION = 4

_PARSED_SCHEMA = (
    "event_id string, user_id string, item_id string, event_type string, timestamp long, "
    "error string, key binary, value binary, partition int, offset long"
)
_EXAMPLE_SCHEMA = (
    "event_id string, timestamp long, user_id string, item_id string, event_type string, "
    "history array<string>, date string"
)


@dataclass(frozen=True)
class BatchReport:
    batch_id: int
    events: int
    rejected: int
    examples: int
    seconds: float

    def describe(self) -> str:
        return (
            f"batch {self.batch_id}: {self.events} events -> {self.examples} examples, "
            f"{self.rejected} rejected to dead letters ({self.seconds:.1f}s)"
        )


class FeatureJob:
    """The feature-worker role: one streaming query over the events topic."""

    def __init__(self, config: Config, spark: SparkSession) -> None:
        self.config = config
        self.spark = spark
        self.bus = open_event_bus(config)
        self.examples = open_offline_examples(config)
        self.reports: list[BatchReport] = []

    def run(
        self, until_idle: bool, trigger_seconds: float = 5.0, max_events_per_batch: int = 0
    ) -> list[BatchReport]:
        """Processes the topic; with ``until_idle``, stops once everything available is done."""
        reader = self.spark.readStream.format(SOURCE_NAME).options(
            **source_options(self.config, max_events_per_batch)
        )
        writer = (
            reader.load()
            .writeStream.foreachBatch(self._process_batch)
            .option("checkpointLocation", str(self.config.features_checkpoint_dir))
            .queryName("streamrec-features")
        )
        if until_idle:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{trigger_seconds} seconds")
        with _stop_requested() as stop:
            query = writer.start()
            try:
                # Short waits keep the main thread free to notice SIGTERM/SIGINT.
                while not stop.is_set():
                    if query.awaitTermination(1):
                        break
            finally:
                query.stop()  # an interrupted batch is not committed; the next run replays it
        return self.reports

    def _process_batch(self, records: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        parsed = records.mapInPandas(_parse_records, _PARSED_SCHEMA).persist()
        try:
            rejected = self._dead_letter(parsed.where(F.col("error").isNotNull()))
            events = (
                parsed.where(F.col("error").isNull())
                .select("event_id", "user_id", "item_id", "event_type", "timestamp")
                .dropDuplicates(["event_id"])
                .persist()
            )
            accepted = events.count()
            source = _source_offsets(parsed)
            examples = self._write_examples(events, batch_id, source)
            config = self.config
            events.foreachPartition(lambda rows: _append_history(config, rows))
            events.unpersist()
            self._mirror_offsets(source)
        finally:
            parsed.unpersist()
        report = BatchReport(batch_id, accepted, rejected, examples, time.monotonic() - started)
        self.reports.append(report)
        log.info(report.describe())
        print(report.describe(), flush=True)

    def _mirror_offsets(self, source: dict) -> None:
        """Commits the batch's offsets to the consumer group, now that its output is durable."""
        end = {int(partition): last + 1 for partition, (_, last) in source.items()}
        group, topic = self.config.features.consumer_group, self.config.kafka.events_topic
        try:
            self.bus.commit_offsets(group, topic, end)
        except StoreUnavailable as exc:
            # Only a monitoring mirror: the checkpoint alone decides where the job resumes.
            log.warning("could not mirror offsets to consumer group: %s", exc)

    def _dead_letter(self, rejected: DataFrame) -> int:
        rows = (
            RejectedRecord(r.key, r.value, r.partition, r.offset, r.error)
            for r in rejected.select(
                "key", "value", "partition", "offset", "error"
            ).toLocalIterator()
        )
        kafka = self.config.kafka
        return send_dead_letters(self.bus, kafka.dead_letter_topic, kafka.events_topic, rows)

    def _write_examples(self, events: DataFrame, batch_id: int, source: dict) -> int:
        config, length = self.config, self.config.features.history_length

        def examples_for_users(events: pd.DataFrame) -> pd.DataFrame:
            users = events["user_id"].unique().tolist()
            prior = _online_store(config).histories(users)  # one round trip for all users
            return pd.concat(
                [
                    point_in_time_examples(user_events, prior[user], length)
                    for user, user_events in events.groupby("user_id", sort=False)
                ],
                ignore_index=True,
            )

        # Grouping by a bucket of users, not by user, amortises per-group overhead and the
        # Redis round trip over many users; a user's events still land in a single group.
        buckets = self.config.spark.shuffle_partitions * _BUCKETS_PER_PARTITION
        bucket = F.pmod(F.hash("user_id"), F.lit(buckets))
        examples = events.groupBy(bucket.alias("bucket")).applyInPandas(
            examples_for_users, _EXAMPLE_SCHEMA
        )
        examples.write.format(SINK_NAME).mode("append").options(
            **sink_options(self.config, batch_id, source)
        ).save()
        manifest = self.examples.manifest(batch_id)
        return manifest.examples if manifest else 0


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


_online_stores: dict[Config, OnlineStore] = {}


def _online_store(config: Config) -> OnlineStore:
    """One store (one connection pool) per Spark worker process and configuration."""
    if config not in _online_stores:
        _online_stores[config] = open_online_store(config)
    return _online_stores[config]


def _parse_records(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        rows = []
        for key, value, partition, offset in zip(
            chunk["key"], chunk["value"], chunk["partition"], chunk["offset"], strict=True
        ):
            try:
                event = parse_event(value if value is not None else b"")
                fields = (
                    event.event_id,
                    event.user_id,
                    event.item_id,
                    event.event_type,
                    event.timestamp,
                    None,
                )
            except InvalidEvent as exc:
                fields = (None, None, None, None, None, str(exc))
            rows.append((*fields, key, value, partition, offset))
        yield pd.DataFrame(rows, columns=[c.split()[0] for c in _PARSED_SCHEMA.split(", ")])


def _source_offsets(parsed: DataFrame) -> dict:
    ranges = parsed.groupBy("partition").agg(
        F.min("offset").alias("first"), F.max("offset").alias("last")
    )
    return {str(r.partition): [r.first, r.last] for r in ranges.collect()}


def _append_history(config: Config, rows: Iterator) -> None:
    store = _online_store(config)
    batch = []
    for row in rows:
        batch.append((row.user_id, HistoryEntry(row.timestamp, row.event_id, row.item_id)))
        if len(batch) >= 5000:
            store.append_history(batch)
            batch = []
    if batch:
        store.append_history(batch)
