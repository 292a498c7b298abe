"""The offline examples port: committed training examples, made visible batch by batch.

Its one promise is atomic visibility. A writer stages a batch's files, then :meth:`commit`
makes them durable under their final names and writes the batch's manifest as the single
atomic step that publishes them. A reader sees exactly the committed batches, whatever a writer
is doing at the time, and a recommitted batch (a replay) replaces its earlier files instead of
adding to them. Layout and manifest format are the feature spec's
(:mod:`streamrec.infra.contracts.feature_spec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from streamrec.infra.contracts.feature_spec import BatchManifest, ExampleFile


class OfflineExamples(Protocol):
    def staging_dir(self, name: str) -> Path:
        """Where a batch's writers put files before the commit (shared by every worker)."""

    def commit(self, manifest: BatchManifest, staged: Mapping[str, str]) -> None:
        """Publishes a batch: ``staged`` maps each manifest file's path to its staged file."""

    def abort(self, name: str) -> None:
        """Discards what was staged for a batch that will not be committed."""

    def manifest(self, name: str) -> BatchManifest | None:
        """The manifest of the batch of that name (feature spec) if it was committed."""

    def manifests(self) -> list[BatchManifest]:
        """Every committed batch, in batch order."""

    def files(
        self, start_date: str | None = None, end_date: str | None = None
    ) -> list[ExampleFile]:
        """Committed files with event dates in ``[start_date, end_date]``, with absolute paths."""
