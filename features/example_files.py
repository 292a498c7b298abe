"""Staged TFRecord files of one task: one file per event date, fsynced before they are reported.

A task of the feature job writes its examples here and reports the files; the driver then
commits them through the offline-examples port, which gives each its final name (fixed by
batch, date and Kafka partition, so a replayed batch overwrites rather than adds) and publishes
the batch with its manifest.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from streamrec.features.examples import TrainingExample
from streamrec.features.tfrecord import write_record
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.feature_spec import ExampleFile


@dataclass
class StagedFile:
    staged: str
    date: str
    part: int
    examples: int = 0
    min_timestamp: int = 2**63 - 1
    max_timestamp: int = 0

    def example_file(self, name: str) -> ExampleFile:
        """How the manifest of the batch ``name`` describes this file once committed."""
        return ExampleFile(
            path=spec.data_file_path(self.date, name, self.part),
            date=self.date,
            examples=self.examples,
            min_timestamp=self.min_timestamp,
            max_timestamp=self.max_timestamp,
        )

    def to_dict(self) -> dict:
        return asdict(self)


class StagedExampleWriter:
    """Writes examples into ``staging_dir``; a retried task never reuses its predecessor's files."""

    def __init__(self, staging_dir: Path, part: int) -> None:
        self._dir = staging_dir
        self._part = part
        self._attempt = uuid.uuid4().hex[:8]
        self._open: dict[str, tuple[BinaryIO, StagedFile]] = {}

    def write(self, example: TrainingExample) -> None:
        date = example.date
        if date not in self._open:
            self._dir.mkdir(parents=True, exist_ok=True)
            name = f"part-{self._part:05d}-{self._attempt}-{date}{spec.TFRECORD_SUFFIX}"
            path = self._dir / name
            self._open[date] = (path.open("wb"), StagedFile(str(path), date, self._part))
        handle, staged = self._open[date]
        write_record(handle, example.serialize())
        staged.examples += 1
        staged.min_timestamp = min(staged.min_timestamp, example.timestamp)
        staged.max_timestamp = max(staged.max_timestamp, example.timestamp)

    def close(self) -> list[StagedFile]:
        """Flushes and fsyncs every file; returns them, ordered by date."""
        for handle, _ in self._open.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        return [staged for _, (_, staged) in sorted(self._open.items())]
