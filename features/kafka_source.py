"""A Spark streaming source for Kafka topics, written with PySpark's Python Data Source API.

Spark's own Kafka connector is a JVM package fetched from Maven, which this project's
machines cannot reach; this source needs only ``kafka-python``. Offsets are a map
``{"<partition>": next_offset}``; Spark keeps them in the query checkpoint, so a restarted
query resumes exactly where its last committed micro-batch ended.

Options: ``bootstrap`` (servers), ``topic``, ``maxEventsPerBatch`` (optional cap per batch).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxRows

SOURCE_NAME = "streamrec-kafka"
SCHEMA = "key binary, value binary, partition int, offset long, kafka_timestamp long"
_ARROW_SCHEMA = pa.schema(
    [
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("kafka_timestamp", pa.int64()),
    ]
)
_CHUNK = 4096
_STALL_SECONDS = 60.0


class OffsetRange(InputPartition):
    def __init__(self, topic: str, partition: int, start: int, end: int) -> None:
        super().__init__((topic, partition, start, end))
        self.topic, self.partition, self.start, self.end = topic, partition, start, end


class KafkaDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema: object) -> KafkaStreamReader:
        return KafkaStreamReader(self.options)


class KafkaStreamReader(DataSourceStreamReader):
    def __init__(self, options: dict[str, str]) -> None:
        self.bootstrap = options["bootstrap"]
        self.topic = options["topic"]
        self.max_events = int(options.get("maxEventsPerBatch", "0"))

    def initialOffset(self) -> dict:
        return {str(p): 0 for p in latest_offsets(self.bootstrap, self.topic)}

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_events) if self.max_events > 0 else ReadAllAvailable()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        latest = {str(p): end for p, end in latest_offsets(self.bootstrap, self.topic).items()}
        if isinstance(limit, ReadMaxRows):
            return capped_offsets(start, latest, limit.max_rows)
        return {p: max(end, start.get(p, 0)) for p, end in latest.items()}

    def partitions(self, start: dict, end: dict) -> list[OffsetRange]:
        return [
            OffsetRange(self.topic, int(p), start.get(p, 0), stop)
            for p, stop in sorted(end.items(), key=lambda kv: int(kv[0]))
            if stop > start.get(p, 0)
        ]

    def read(self, partition: OffsetRange) -> Iterator[pa.RecordBatch]:
        yield from read_range(self.bootstrap, partition)


def capped_offsets(start: dict, latest: dict, max_events: int) -> dict:
    """End offsets that admit at most ``max_events`` new records, shared fairly by partitions."""
    remaining = {p: max(0, end - start.get(p, 0)) for p, end in latest.items()}
    grant = dict.fromkeys(remaining, 0)
    budget = max_events
    while budget > 0 and any(grant[p] < remaining[p] for p in remaining):
        open_partitions = [p for p in remaining if grant[p] < remaining[p]]
        share = max(1, budget // len(open_partitions))
        for p in open_partitions:
            take = min(share, remaining[p] - grant[p], budget)
            grant[p] += take
            budget -= take
    return {p: start.get(p, 0) + grant[p] for p in latest}


def latest_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset to be written, per partition (the high watermark).

    Tansu answers ListOffsets(latest) with the base offset of the last record batch plus one,
    not the high watermark, so the listed value can be short by up to a whole producer batch.
    A fetch response carries the true high watermark: fetch from just before the listed end
    and read it there. Against Apache Kafka the two agree and this costs one small fetch.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise LookupError(f"topic {topic!r} does not exist at {bootstrap}")
        listed = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: _high_watermark(consumer, tp, end) for tp, end in listed.items()}
    finally:
        consumer.close()


def _high_watermark(consumer: object, tp: object, listed_end: int) -> int:
    if listed_end <= 0:
        return listed_end
    consumer.assign([tp])
    consumer.seek(tp, listed_end - 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=200, max_records=1, update_offsets=False)
        highwater = consumer.highwater(tp)
        if highwater is not None:
            return max(highwater, listed_end)
    return listed_end


def read_range(bootstrap: str, part: OffsetRange) -> Iterator[pa.RecordBatch]:
    """The records of one partition in ``[start, end)``, as Arrow batches."""
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition(part.topic, part.partition)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=_CHUNK
    )
    consumer.assign([tp])
    consumer.seek(tp, part.start)
    rows: list[tuple] = []
    last_progress = time.monotonic()
    try:
        while consumer.position(tp) < part.end:
            records = consumer.poll(timeout_ms=500).get(tp, [])
            if records:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > _STALL_SECONDS:
                raise TimeoutError(
                    f"no records from {part.topic}[{part.partition}] at offset "
                    f"{consumer.position(tp)} for {_STALL_SECONDS:.0f}s (expected up to {part.end})"
                )
            rows.extend(
                (r.key, r.value, part.partition, r.offset, r.timestamp)
                for r in records
                if r.offset < part.end
            )
            if len(rows) >= _CHUNK:
                yield _batch(rows)
                rows = []
        if rows:
            yield _batch(rows)
    finally:
        consumer.close()


def _batch(rows: list[tuple]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, _ARROW_SCHEMA, strict=True)],
        schema=_ARROW_SCHEMA,
    )


def commit_group_offsets(bootstrap: str, topic: str, group: str, end: dict) -> None:
    """Records ``end`` (next offset per partition) as the group's committed offsets.

    The query checkpoint stays the source of truth for where to resume; the group is a mirror
    so that standard Kafka tools can show the feature job's lag.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        consumer.commit(
            {TopicPartition(topic, int(p)): OffsetAndMetadata(o, "", -1) for p, o in end.items()}
        )
    finally:
        consumer.close()
