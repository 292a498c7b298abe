"""A Spark batch sink that writes training examples as TFRecords and commits them as one batch.

Each Spark task writes its rows into staging files, one per event date, fsyncs them and reports
them in its commit message. The driver's commit hands every reported file to the offline
examples store (:mod:`streamrec.infra.ports.offline_examples`), which moves each to its final
name (fixed by batch, date and task partition, so a replayed batch overwrites rather than
duplicates) and then writes the batch manifest: the single atomic step that makes the batch
visible to readers.

Options: the ``[offline_examples]`` section as ``offline_examples.*`` (see :func:`sink_options`),
``batchId`` (micro-batch id) and ``source`` (JSON of the input offsets, kept in the manifest).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage

from streamrec.features.tfrecord import encode_example, write_record
from streamrec.infra.config import Config, config_from_options, section_options
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.feature_spec import BatchManifest, ExampleFile
from streamrec.infra.stores import open_offline_examples

SINK_NAME = "streamrec-tfrecord"


def sink_options(config: Config, batch_id: int, source: dict) -> dict[str, str]:
    return {
        **section_options(config, "offline_examples", path=config.examples_dir),
        "batchId": str(batch_id),
        "source": json.dumps(source),
    }


@dataclass
class StagedFile:
    staged: str
    date: str
    part: int
    examples: int = 0
    min_timestamp: int = 2**63 - 1
    max_timestamp: int = 0

    def add(self, timestamp: int) -> None:
        self.examples += 1
        self.min_timestamp = min(self.min_timestamp, timestamp)
        self.max_timestamp = max(self.max_timestamp, timestamp)

    def example_file(self, batch_id: int) -> ExampleFile:
        return ExampleFile(
            path=spec.data_file_path(self.date, batch_id, self.part),
            date=self.date,
            examples=self.examples,
            min_timestamp=self.min_timestamp,
            max_timestamp=self.max_timestamp,
        )


@dataclass
class StagedFiles(WriterCommitMessage):
    files: list[StagedFile] = field(default_factory=list)


class TFRecordDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return SINK_NAME

    def writer(self, schema: object, overwrite: bool) -> TFRecordWriter:
        return TFRecordWriter(self.options)


class TFRecordWriter(DataSourceArrowWriter):
    def __init__(self, options: dict[str, str]) -> None:
        self.store = open_offline_examples(config_from_options(options, "offline_examples"))
        self.batch_id = int(options["batchId"])
        self.source = json.loads(options.get("source", "{}"))

    def write(self, iterator: Iterator[pa.RecordBatch]) -> StagedFiles:
        from pyspark import TaskContext

        part = TaskContext.get().partitionId()
        attempt = uuid.uuid4().hex[:8]  # a retried task must not write into its predecessor's files
        staging = self.store.staging_dir(self.batch_id)
        staging.mkdir(parents=True, exist_ok=True)
        open_files: dict[str, tuple[BinaryIO, StagedFile]] = {}
        try:
            for batch in iterator:
                for row in batch.to_pylist():
                    date = row[spec.DATE]
                    if date not in open_files:
                        path = staging / f"part-{part:05d}-{attempt}-{date}{spec.TFRECORD_SUFFIX}"
                        open_files[date] = (path.open("wb"), StagedFile(str(path), date, part))
                    handle, staged = open_files[date]
                    write_record(handle, _example(row))
                    staged.add(row[spec.TIMESTAMP])
        finally:
            for handle, _ in open_files.values():
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        return StagedFiles([staged for _, staged in open_files.values()])

    def commit(self, messages: list[StagedFiles | None]) -> None:
        staged = [file for message in messages if message for file in message.files]
        files = [file.example_file(self.batch_id) for file in staged]
        manifest = BatchManifest(
            batch_id=self.batch_id,
            files=tuple(sorted(files, key=lambda f: f.path)),
            source=self.source,
            committed_at_ms=int(time.time() * 1000),
        )
        self.store.commit(manifest, {f.path: s.staged for f, s in zip(files, staged, strict=True)})

    def abort(self, messages: list[StagedFiles | None]) -> None:
        self.store.abort(self.batch_id)


def _example(row: dict) -> bytes:
    return encode_example(
        {
            spec.EVENT_ID: row[spec.EVENT_ID],
            spec.TIMESTAMP: row[spec.TIMESTAMP],
            spec.USER_ID: row[spec.USER_ID],
            spec.ITEM_ID: row[spec.ITEM_ID],
            spec.EVENT_TYPE: row[spec.EVENT_TYPE],
            spec.HISTORY: list(row[spec.HISTORY] or []),
        }
    )
