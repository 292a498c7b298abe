"""``streamrec events import``: external history, published as events, resumably.

Rows become events through a :class:`~.row_mapping.RowMapping`; rows that do not go to a
report file with the reason (one JSON object per line) and are counted by kind. Events are
sent with the :class:`~.event_producer.EventProducer`.

Progress is checkpointed in a small Kafka topic (``kafka.imports_topic``), next to the events
themselves: after every chunk Kafka has acknowledged, the number of rows done is recorded
under a key made of the file's content hash and the mapping options. Running the same import
again resumes after the last checkpoint, or publishes nothing at all if it finished. A crash
between a chunk and its checkpoint re-sends that chunk with the same event ids, which the
feature job drops as duplicates.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_event_bus
from streamrec.infra.storage.ports.event_bus import EventBus
from streamrec.ingest.event_producer import DeliveryFailed, EventProducer
from streamrec.ingest.row_mapping import RowMapping, RowRejected
from streamrec.ingest.tabular_files import TabularFile

CHECKPOINT_ROWS = 20_000


@dataclass
class ImportReport:
    rows: int = 0  # rows read in this run
    imported: int = 0  # events published in this run
    skipped: int = 0  # rows done by an earlier run
    rejected: Counter = field(default_factory=Counter)  # rows by reason kind
    seconds: float = 0.0
    report_file: str = ""
    already_complete: bool = False

    def summary(self) -> dict:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "skipped_as_already_imported": self.skipped,
            "already_complete": self.already_complete,
            "seconds": round(self.seconds, 2),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds else 0,
            "report_file": self.report_file,
        }


def import_file(
    config: Config,
    source: TabularFile,
    mapping: RowMapping,
    report_file: Path,
    progress: Callable[[ImportReport], None] = lambda _: None,
) -> ImportReport:
    """Publishes the file's events (see the module docstring); returns what it did."""
    mapping.check(source.columns, str(source.path))
    started = time.monotonic()
    bus = open_event_bus(config)
    checkpoints = ImportCheckpoints(bus, config.kafka.imports_topic)
    key = _fingerprint(source, mapping)
    done = checkpoints.latest(key)
    report = ImportReport(report_file=str(report_file))
    if done and done["complete"]:
        report.already_complete, report.skipped = True, done["rows_done"]
        return report
    resume_after = done["rows_done"] if done else 0
    report_file.parent.mkdir(parents=True, exist_ok=True)
    with (
        report_file.open("a" if resume_after else "w") as rejects,
        EventProducer(config) as producer,
    ):
        last = resume_after
        for row in source.rows():
            last = row.number
            if row.number <= resume_after:
                report.skipped += 1
                continue
            report.rows += 1
            try:
                producer.send(mapping.event(row))
                report.imported += 1
            except RowRejected as rejected:
                report.rejected[rejected.kind] += 1
                rejects.write(_reject_line(row.number, rejected, row.values))
            if row.number % CHECKPOINT_ROWS == 0:
                _commit(producer, checkpoints, key, source, row.number, complete=False)
                progress(report)
        _commit(producer, checkpoints, key, source, last, complete=True)
    report.seconds = time.monotonic() - started
    return report


def _commit(
    producer: EventProducer,
    checkpoints: ImportCheckpoints,
    key: str,
    source: TabularFile,
    rows_done: int,
    complete: bool,
) -> None:
    failed = producer.flush()
    if failed:
        raise DeliveryFailed(failed)  # the checkpoint stays where Kafka acknowledged everything
    checkpoints.record(
        key, {"file": str(source.path), "rows_done": rows_done, "complete": complete}
    )


def _reject_line(number: int, rejected: RowRejected, values: object) -> str:
    record = {"row": number, "kind": rejected.kind, "reason": rejected.detail, "values": values}
    return json.dumps(record, default=str) + "\n"  # ASCII: undecodable bytes stay escaped


def _fingerprint(source: TabularFile, mapping: RowMapping) -> str:
    digest = hashlib.sha256(mapping.fingerprint())
    with source.path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ImportCheckpoints:
    """The latest checkpoint per import key, kept in a one-partition topic."""

    def __init__(self, bus: EventBus, topic: str) -> None:
        self.bus = bus
        self.topic = topic
        bus.ensure_topic(topic, partitions=1)  # as KafkaConfig.topics() says

    def latest(self, key: str) -> dict | None:
        found = None
        end = self.bus.end_offsets(self.topic).get(0, 0)
        for chunk in self.bus.read(self.topic, 0, 0, end):
            for record in chunk:
                if record.key == key.encode():
                    found = orjson.loads(record.value)
        return found

    def record(self, key: str, checkpoint: dict) -> None:
        self.bus.publish(self.topic, [(key.encode(), orjson.dumps(checkpoint))])
