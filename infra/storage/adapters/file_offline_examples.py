"""Offline examples on a POSIX filesystem (local, or shared by every Spark worker and trainer).

The commit protocol: every staged file is fsynced by its writer, moved to its final name (which
depends only on the batch's name, date and part, so a replay overwrites rather than adds) and
its directory fsynced; then the manifest is written to a temporary name, fsynced, and renamed
into place. The rename is the commit: a crash before it leaves the batch invisible, a crash
after it leaves a complete batch.

Which files a reader sees follows the feature spec: every stream batch's files, except that a
date covered by a backfill shows the backfill's files in place of those of the stream batches
it was rebuilt from.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.feature_spec import BatchManifest, ExampleFile
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StoreUnavailable

_STAGING_DIR = "_staging"


class FileOfflineExamples:
    def __init__(self, config: Config) -> None:
        self.root = config.examples_dir

    def staging_dir(self, name: str) -> Path:
        return self.root / _STAGING_DIR / name

    def commit(self, manifest: BatchManifest, staged: Mapping[str, str]) -> None:
        stale = set(self.root.glob(f"{spec.PARTITION_PREFIX}*/{manifest.name}-part-*"))
        try:
            for file in manifest.files:
                final = self.root / file.path
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged[file.path], final)  # a replay swaps each file atomically
                _fsync_dir(final.parent)
                stale.discard(final)
            self._write_manifest(manifest)
        except OSError as exc:
            raise StoreUnavailable(f"cannot commit examples batch to {self.root}: {exc}") from exc
        for path in stale:  # from an earlier attempt at this batch, now unreferenced
            path.unlink()
        self.abort(manifest.name)

    def abort(self, name: str) -> None:
        shutil.rmtree(self.staging_dir(name), ignore_errors=True)

    def manifest(self, name: str) -> BatchManifest | None:
        path = self.root / spec.MANIFEST_DIR / f"{name}.json"
        return self._read(path) if path.exists() else None

    def manifests(self) -> list[BatchManifest]:
        directory = self.root / spec.MANIFEST_DIR
        if not directory.is_dir():
            return []
        return [self._read(path) for path in sorted(directory.glob("*.json"))]

    def files(
        self, start_date: str | None = None, end_date: str | None = None
    ) -> list[ExampleFile]:
        manifests = self.manifests()
        backfills = sorted(
            (m for m in manifests if m.backfill is not None), key=lambda m: m.committed_at_ms
        )

        def holder(date: str) -> BatchManifest | None:
            covering = [m for m in backfills if m.backfill.covers(date)]
            return covering[-1] if covering else None

        found = [
            dataclasses.replace(file, path=str(self.root / file.path))
            for manifest in manifests
            for file in manifest.files
            if (start_date is None or file.date >= start_date)
            and (end_date is None or file.date <= end_date)
            and _visible(manifest, holder(file.date))
        ]
        return sorted(found, key=lambda f: (f.date, Path(f.path).name))

    def _read(self, path: Path) -> BatchManifest:
        try:
            text = path.read_text()
        except OSError as exc:
            raise StoreUnavailable(f"cannot read examples manifest {path}: {exc}") from exc
        return BatchManifest.from_json(text, origin=str(path))

    def _write_manifest(self, manifest: BatchManifest) -> None:
        directory = self.root / spec.MANIFEST_DIR
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{manifest.name}.json"
        partial = directory / f".{name}.partial"
        with partial.open("w") as handle:
            handle.write(manifest.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, directory / name)
        _fsync_dir(directory)


def _visible(manifest: BatchManifest, backfill: BatchManifest | None) -> bool:
    """Whether a file of ``manifest`` counts for a date whose latest backfill is ``backfill``."""
    if backfill is None:
        return manifest.backfill is None
    if manifest.backfill is not None:
        return manifest is backfill
    return manifest.batch_id > backfill.backfill.through_batch


def _fsync_dir(directory: Path) -> None:
    """Makes a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
