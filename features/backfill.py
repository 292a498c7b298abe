"""``streamrec features backfill``: the examples of a date range, rebuilt by a Spark batch job.

It runs the stream's own transformation code (:mod:`.event_decisions`, :mod:`.examples`,
:mod:`.example_files`) over a source read from its start: the events topic up to what the
stream has processed (the consumer group's offsets), or a JSON Lines file of events. Per
source partition in offset order it validates, keeps the first record of each ``event_id``
and routes late events exactly as the stream does; then it keeps one record per event_id
across partitions (the lowest partition and offset), computes every user's point-in-time
history from those events alone, and writes the examples of the requested dates.

Output is deterministic: users are dealt into ``spark.shuffle_partitions`` parts by a fixed
hash, examples are written in (user, time, event_id) order, and file names depend only on the
dates and the part. So a rerun gives byte-identical files. A backfill manifest
(feature spec: ``backfill-START_END``) then replaces, for those dates, the files of every
stream batch it was rebuilt from.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import pyarrow as pa
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from streamrec.features.event_decisions import decode, first_per_event_id, split_late
from streamrec.features.example_files import StagedExampleWriter, StagedFile, example_records
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.feature_spec import Backfill, BatchManifest
from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_event_bus, open_offline_examples
from streamrec.infra.storage.ports.event_bus import BusRecord

_EVENTS_DDL = (
    "event_id string, user_id string, item_id string, event_type string, timestamp long, "
    "context string, partition int, offset long, refused int, late int, repeats int"
)
_SOURCE_DDL = "topic string, partition int, end_offset long, file string"


@dataclass(frozen=True)
class BackfillReport:
    name: str
    events: int  # accepted events of the whole source, before the date filter
    examples: int  # of the requested dates
    files: int
    refused: int
    late: int
    duplicates: int
    seconds: float


def run_backfill(
    config: Config, spark: SparkSession, start_date: str, end_date: str, file: Path | None = None
) -> BackfillReport:
    started = time.monotonic()
    store = open_offline_examples(config)
    through = max((m.batch_id for m in store.manifests() if m.backfill is None), default=-1)
    ranges, source = _source(config, file)
    sources = spark.createDataFrame(ranges, _SOURCE_DDL).repartition(max(1, len(ranges)))
    decided = sources.mapInArrow(_DecideTask(config), _EVENTS_DDL).cache()
    counts = decided.agg(
        F.sum("refused"), F.sum("late"), F.sum("repeats"), F.count("event_id")
    ).first()
    first = Window.partitionBy("event_id").orderBy("partition", "offset")
    events = (
        decided.where(F.col("event_id").isNotNull())
        .withColumn("rank", F.row_number().over(first))
        .where("rank = 1")
        .select("event_id", "user_id", "item_id", "event_type", "timestamp", "context")
    )
    name = spec.backfill_name(start_date, end_date)
    parts = config.spark.shuffle_partitions

    def task(key, table):  # no hints: PySpark 4.3 fails to read the hints of a partial
        return _write_examples(config, name, start_date, end_date, key, table)

    rows = (
        events.groupBy(F.pmod(F.hash("user_id"), F.lit(parts)).alias("part"))
        .applyInArrow(task, "part int, files string")
        .collect()
    )
    decided.unpersist()
    staged = [StagedFile(**f) for row in rows for f in json.loads(row.files)]
    files = sorted((f.example_file(name) for f in staged), key=lambda f: f.path)
    paths = {f.example_file(name).path: f.staged for f in staged}
    manifest = BatchManifest(
        batch_id=-1,
        files=tuple(files),
        source=source,
        committed_at_ms=int(time.time() * 1000),
        backfill=Backfill(start_date, end_date, through),
    )
    store.commit(manifest, paths)
    accepted = events.count()
    return BackfillReport(
        name, accepted, manifest.examples, len(files), counts[0] or 0, counts[1] or 0,
        (counts[2] or 0) + (counts[3] - accepted), time.monotonic() - started,
    )  # fmt: skip


def _source(config: Config, file: Path | None) -> tuple[list[tuple], dict]:
    if file is not None:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        return [(None, 0, 0, str(file))], {"file": str(file), "sha256": digest}
    bus, topic = open_event_bus(config), config.kafka.events_topic
    processed = bus.committed_offsets(config.features.consumer_group, topic)
    ends = processed or bus.end_offsets(topic)  # what the stream has processed, if it ran
    ranges = [(topic, p, end, None) for p, end in sorted(ends.items()) if end > 0]
    return ranges, {"topic": topic, "end_offsets": {str(p): e for p, e in ends.items()}}


@dataclass(frozen=True)
class _DecideTask:
    """Per source partition, in offset order: the stream's decode, repeat and lateness rules."""

    config: Config

    def __call__(self, sources: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in sources:
            for topic, partition, end, file in zip(*batch.to_pydict().values(), strict=True):
                yield self._decide(self._records(topic, partition, end, file))

    def _records(self, topic: str, partition: int, end: int, file: str | None) -> list[BusRecord]:
        if file is not None:
            with open(file, "rb") as lines:
                return [
                    BusRecord(None, line, 0, n, 0) for n, line in enumerate(lines) if line.strip()
                ]
        bus = open_event_bus(self.config)
        return [r for chunk in bus.read(topic, partition, 0, end) for r in chunk]

    def _decide(self, records: list[BusRecord]) -> pa.RecordBatch:
        events, refused = decode(records, self.config.features.max_event_time_ahead_minutes)
        events, repeats = first_per_event_id(events)
        horizon = self.config.features.dedup_horizon_hours
        events, late, _ = split_late(events, {}, horizon)
        rows = [
            {**_event_columns(e), "partition": r.partition, "offset": r.offset} for e, r in events
        ]
        counts = {"refused": len(refused), "late": len(late), "repeats": repeats}
        return pa.RecordBatch.from_pylist([*rows, counts], schema=_EVENTS_SCHEMA)


def _event_columns(event: Event) -> dict:
    return {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "event_type": event.event_type,
        "timestamp": event.timestamp,
        "context": orjson.dumps(event.context).decode() if event.context else None,
    }


def _event_order(row: tuple) -> tuple:
    return row[:3]  # user, time, event_id: unique, so contexts are never compared


def _write_examples(
    config: Config, name: str, start_date: str, end_date: str, key: tuple, table: pa.Table
) -> pa.Table:
    """Per part of the users: their histories from the source alone, examples of the dates."""
    part = key[0].as_py()
    columns = ("user_id", "timestamp", "event_id", "item_id", "event_type", "context")
    rows = sorted(zip(*(table[c].to_pylist() for c in columns), strict=True), key=_event_order)
    events = [Event(e, u, i, t, ts, orjson.loads(c) if c else {}) for u, ts, e, i, t, c in rows]
    layout = config.features.example_layout
    records = example_records(layout, events, {}, config.features.history_length)
    writer = StagedExampleWriter(open_offline_examples(config), name, part=part, layout=layout)
    try:
        for record in records:
            if start_date <= record.date <= end_date:
                writer.write(record)
    finally:
        files = writer.close()
    files_json = json.dumps([asdict(f) for f in files])
    return pa.table({"part": pa.array([part], pa.int32()), "files": [files_json]})


_EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("event_type", pa.string()),
        ("timestamp", pa.int64()),
        ("context", pa.string()),  # JSON, null when the event had none
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("refused", pa.int32()),
        ("late", pa.int32()),
        ("repeats", pa.int32()),
    ]
)
