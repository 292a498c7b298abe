"""The offline examples port: committed training examples, made visible batch by batch.

Its one promise is atomic visibility. A batch's writers (any process: Spark executors) stage its
files, then :meth:`commit` writes the batch's manifest as the single atomic step that publishes
them under their final names. A reader sees exactly the committed batches, whatever a writer
is doing at the time, and a recommitted batch (a replay) replaces its earlier files instead of
adding to them. Layout and manifest format are the feature spec's
(:mod:`streamrec.infra.contracts.feature_spec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO, Protocol

from streamrec.infra.contracts.feature_spec import BatchManifest, ExampleFile


class OfflineExamples(Protocol):
    def open_staged(self, name: str, date: str, part: int, attempt: str) -> tuple[str, BinaryIO]:
        """A new staged file of batch ``name``: its reference, for :meth:`commit`, and its
        writer, whose ``close`` makes it durable. ``attempt`` is unique to the writer, so a
        retried task never writes over its predecessor's files."""

    def commit(self, manifest: BatchManifest, staged: Mapping[str, str]) -> None:
        """Publishes a batch: ``staged`` maps each manifest file's path to its staged file's
        reference (a store may keep the file where it was staged, and name it so)."""

    def abort(self, name: str) -> None:
        """Discards what was staged for a batch that will not be committed."""

    def manifest(self, name: str) -> BatchManifest | None:
        """The manifest of the batch of that name (feature spec) if it was committed."""

    def manifests(self) -> list[BatchManifest]:
        """Every committed batch, in batch order."""

    def files(
        self, start_date: str | None = None, end_date: str | None = None
    ) -> list[ExampleFile]:
        """Committed files with event dates in ``[start_date, end_date]``, with local paths
        that this process can open (an object store's files are copied to a cache first)."""
