"""Staged TFRecord files of one task: one file per event date, fsynced before they are reported.

A task of the feature job writes its examples through the offline-examples port and reports
the files; the driver then commits them through the port, which gives each its final name
(fixed by batch, date and Kafka partition, so a replayed batch replaces rather than adds) and
publishes the batch with its manifest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import BinaryIO, Protocol

from streamrec.features.examples import EventLike, point_in_time_examples
from streamrec.features.sequence_windows import sequence_windows
from streamrec.features.tfrecord import write_record
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.feature_spec import ExampleFile
from streamrec.infra.storage.ports.offline_examples import OfflineExamples
from streamrec.infra.storage.ports.online_store import HistoryEntry


class ExampleRecord(Protocol):
    """A record of either example layout: a per-event example or a sequence window."""

    @property
    def date(self) -> str: ...
    @property
    def examples(self) -> int: ...
    @property
    def min_timestamp(self) -> int: ...
    @property
    def max_timestamp(self) -> int: ...
    def serialize(self) -> bytes: ...


def example_records(
    layout: str,
    events: Sequence[EventLike],
    prior: Mapping[str, Iterable[HistoryEntry]],
    history_length: int,
) -> Sequence[ExampleRecord]:
    """The records of ``events`` in the feature spec's ``layout``, in a deterministic order."""
    if layout == spec.SEQUENCES_LAYOUT:
        return sequence_windows(events, prior, history_length)
    return point_in_time_examples(events, prior, history_length)


@dataclass
class StagedFile:
    staged: str
    date: str
    part: int
    layout: str = spec.EVENTS_LAYOUT
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
            layout=self.layout,
        )

    def to_dict(self) -> dict:
        return asdict(self)


class StagedExampleWriter:
    """Stages the examples of batch ``name``, one file per date, through the offline-examples
    port; a retried task never reuses its predecessor's files."""

    def __init__(
        self, store: OfflineExamples, name: str, part: int, layout: str = spec.EVENTS_LAYOUT
    ) -> None:
        self._store = store
        self._name = name
        self._part = part
        self._layout = layout
        self._attempt = uuid.uuid4().hex[:8]
        self._open: dict[str, tuple[BinaryIO, StagedFile]] = {}

    def write(self, record: ExampleRecord) -> None:
        date = record.date
        if date not in self._open:
            reference, handle = self._store.open_staged(self._name, date, self._part, self._attempt)
            self._open[date] = (handle, StagedFile(reference, date, self._part, self._layout))
        handle, staged = self._open[date]
        write_record(handle, record.serialize())
        staged.examples += record.examples
        staged.min_timestamp = min(staged.min_timestamp, record.min_timestamp)
        staged.max_timestamp = max(staged.max_timestamp, record.max_timestamp)

    def close(self) -> list[StagedFile]:
        """Closes every file, which makes it durable; returns them, ordered by date."""
        for handle, _ in self._open.values():
            handle.close()
        return [staged for _, (_, staged) in sorted(self._open.items())]
