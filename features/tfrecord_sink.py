"""A Spark batch sink that writes training examples as TFRecords, committed by a manifest.

Each Spark task writes its rows into staging files, one per event date, and reports them in
its commit message. The driver's commit moves every reported file to its final name (which
depends only on the micro-batch id, the date and the task's partition, so a replayed batch
overwrites rather than duplicates) and then writes the batch manifest: the single atomic step
that makes the batch visible to readers (see :mod:`features.spec`). Files are fsynced before
the manifest is written, so a manifest never points at data a crash could lose.

Options: ``path`` (examples directory), ``batchId`` (micro-batch id), ``source`` (JSON
describing the input offsets, recorded in the manifest).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage

from features import spec
from features.tfrecord import encode_example, write_record

SINK_NAME = "streamrec-tfrecord"
_STAGING_DIR = "_staging"


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
        self.root = Path(options["path"])
        self.batch_id = int(options["batchId"])
        self.source = json.loads(options.get("source", "{}"))

    @property
    def staging(self) -> Path:
        return self.root / _STAGING_DIR / f"batch-{self.batch_id:08d}"

    def write(self, iterator: Iterator[pa.RecordBatch]) -> StagedFiles:
        from pyspark import TaskContext

        part = TaskContext.get().partitionId()
        attempt = uuid.uuid4().hex[:8]  # a retried task must not write into its predecessor's files
        self.staging.mkdir(parents=True, exist_ok=True)
        open_files: dict[str, tuple[BinaryIO, StagedFile]] = {}
        try:
            for batch in iterator:
                for row in batch.to_pylist():
                    date = row[spec.DATE]
                    if date not in open_files:
                        path = (
                            self.staging / f"part-{part:05d}-{attempt}-{date}{spec.TFRECORD_SUFFIX}"
                        )
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
        files = [staged for message in messages if message for staged in message.files]
        previous = set(self.root.glob(f"{spec.PARTITION_PREFIX}*/batch-{self.batch_id:08d}-part-*"))
        committed = []
        for staged in files:
            directory = self.root / f"{spec.PARTITION_PREFIX}{staged.date}"
            directory.mkdir(parents=True, exist_ok=True)
            final = directory / spec.data_file_name(self.batch_id, staged.part)
            os.replace(staged.staged, final)  # a replay swaps each file atomically
            _fsync_dir(directory)
            previous.discard(final)
            committed.append({**_describe(staged), "path": str(final.relative_to(self.root))})
        self._write_manifest(committed)
        for stale in previous:  # from an earlier attempt at this batch, now unreferenced
            stale.unlink()
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self, messages: list[StagedFiles | None]) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def _write_manifest(self, files: list[dict]) -> None:
        manifests = self.root / spec.MANIFEST_DIR
        manifests.mkdir(parents=True, exist_ok=True)
        manifest = {
            "feature_spec_version": spec.FEATURE_SPEC_VERSION,
            "batch_id": self.batch_id,
            "committed_at_ms": int(time.time() * 1000),
            "examples": sum(f["examples"] for f in files),
            "min_timestamp": min((f["min_timestamp"] for f in files), default=None),
            "max_timestamp": max((f["max_timestamp"] for f in files), default=None),
            "source": self.source,
            "files": sorted(files, key=lambda f: f["path"]),
        }
        partial = manifests / f".{spec.manifest_name(self.batch_id)}.partial"
        with partial.open("w") as handle:
            json.dump(manifest, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, manifests / spec.manifest_name(self.batch_id))
        _fsync_dir(manifests)


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


def _describe(staged: StagedFile) -> dict:
    return {
        "date": staged.date,
        "examples": staged.examples,
        "min_timestamp": staged.min_timestamp,
        "max_timestamp": staged.max_timestamp,
    }


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
