"""A Spark streaming source that plans offset ranges of the events topic, one per partition.

Spark's own Kafka connector is a JVM package fetched from Maven, which this project's machines
cannot reach, so offsets are planned here through the event-bus port
(:mod:`~streamrec.infra.storage.ports.event_bus`). Offsets are a map
``{"<partition>": next_offset}``; Spark keeps them in the query checkpoint, so a restarted query
resumes exactly where its last committed micro-batch ended, and a replayed batch covers exactly
the same ranges.

Each micro-batch yields one row per partition with new events, the range
``[start_offset, end_offset)``, and the task that processes the row fetches the records itself
(:mod:`.partition_task`). Yielding the records instead would carry every event from a Python
source worker through the JVM into a second Python worker: measured here, that made a batch
take twice as long. Spark's progress reports therefore count ranges, not events; the job
reports events itself.

Options: the ``[kafka]`` section as ``kafka.*`` (see :func:`source_options`), ``topic``,
``maxEventsPerBatch`` (optional cap per batch) and ``outageBudgetSeconds``: how long planning
waits out an unreachable broker, trying again with backoff (:mod:`.outage_budget`), before it
fails the query.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxRows

from streamrec.features.outage_budget import OutageBudget
from streamrec.infra.core.config import Config, config_from_options, section_options
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_event_bus
from streamrec.infra.storage.ports.event_bus import EventBus

SOURCE_NAME = "streamrec-events"
SCHEMA = "topic string, partition int, start_offset long, end_offset long"
MIN_EVENTS_PER_TASK = 20_000


def source_options(config: Config) -> dict[str, str]:
    return {
        **section_options(config, "kafka", bootstrap=config.kafka_bootstrap),
        "topic": config.kafka.events_topic,
        "maxEventsPerBatch": str(config.features.max_events_per_batch),
        "outageBudgetSeconds": str(config.features.outage_budget_seconds),
    }


class OffsetRanges(InputPartition):
    """The ranges one task processes: ``(topic, partition, start, end)`` each."""

    def __init__(self, ranges: list[tuple[str, int, int, int]]) -> None:
        super().__init__(ranges)
        self.ranges = ranges


class EventBusDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema: object) -> EventStreamReader:
        return EventStreamReader(self.options)


class EventStreamReader(DataSourceStreamReader):
    def __init__(self, options: dict[str, str]) -> None:
        self.config = config_from_options(options, "kafka")
        self.topic = options["topic"]
        self.max_events = int(options.get("maxEventsPerBatch", "0"))
        self.outage = OutageBudget(float(options.get("outageBudgetSeconds", "0")))

    def _bus(self) -> EventBus:
        return open_event_bus(self.config)

    def _end_offsets(self) -> dict[int, int]:
        return self.outage.run(lambda: self._bus().end_offsets(self.topic), "planning a batch")

    def initialOffset(self) -> dict:
        return {str(p): 0 for p in self._end_offsets()}

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_events) if self.max_events > 0 else ReadAllAvailable()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        latest = {str(p): end for p, end in self._end_offsets().items()}
        check_not_behind(self.topic, start, latest)
        if isinstance(limit, ReadMaxRows):
            return capped_offsets(start, latest, limit.max_rows)
        return {p: max(end, start.get(p, 0)) for p, end in latest.items()}

    def partitions(self, start: dict, end: dict) -> list[OffsetRanges]:
        ranges = [
            (self.topic, int(p), start.get(p, 0), stop)
            for p, stop in sorted(end.items(), key=lambda kv: int(kv[0]))
            if stop > start.get(p, 0)
        ]
        return [OffsetRanges(group) for group in group_ranges(ranges, MIN_EVENTS_PER_TASK)]

    def read(self, partition: OffsetRanges) -> Iterator[tuple]:
        yield from partition.ranges


class TopicWentBack(StreamrecError):
    """The topic ends before offsets this query has already processed: events are gone."""


def check_not_behind(topic: str, done: Mapping[str, int], latest: Mapping[str, int]) -> None:
    """Raises TopicWentBack if a partition of ``topic`` ends before ``done``.

    Offsets only grow, so a partition that ends earlier was deleted and recreated, or lost
    acknowledged records (an in-memory broker restarted, an unclean leader election). Reading
    on from the checkpoint would skip the new partition's first records without a word, as
    would treating the query as caught up; Spark's own Kafka source fails the query the same
    way (``failOnDataLoss``).
    """
    behind = {p: (latest.get(p, 0), n) for p, n in done.items() if latest.get(p, 0) < n}
    if behind:
        p, (end, n) = min(behind.items(), key=lambda kv: int(kv[0]))
        raise TopicWentBack(
            f"topic {topic!r} partition {p} ends at offset {end}, before offset {n} this job "
            f"already processed ({len(behind)} partition(s) so): the topic was deleted and "
            "recreated or lost records; events past the checkpoint may be missing. Republish "
            "them, and start over with a new features.checkpoint_dir"
        )


def group_ranges(ranges: list[tuple], min_events: int) -> list[list[tuple]]:
    """Ranges dealt into as many tasks as hold ``min_events`` each, at least one, at most one
    per range: a small batch in one task, a large one spread over every partition.

    Spark spends about 0.1 s on each task of a batch whatever its size, which decides the
    event-to-Redis latency of the continuous worker. The grouping depends only on the ranges,
    so a replayed batch is grouped the same way.
    """
    total = sum(end - start for _, _, start, end in ranges)
    tasks = max(1, min(len(ranges), total // min_events))
    groups: list[list[tuple]] = [[] for _ in range(tasks)]
    for index, offset_range in enumerate(ranges):
        groups[index % tasks].append(offset_range)
    return groups


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
