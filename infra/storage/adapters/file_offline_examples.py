"""Offline examples under a local directory or an object-store prefix (:mod:`.storage_root`).

The commit protocol makes a batch visible in one atomic step, its manifest, written last:

- **Local (or shared POSIX) directory.** Every staged file is fsynced by its writer, moved to
  its final name (which depends only on the batch's name, date and part, so a replay
  overwrites rather than adds) and its directory fsynced; then the manifest is published by
  rename. A crash before the rename leaves the batch invisible, a crash after it a complete one.
- **Object store.** There is no rename, so writers put each file straight under its final
  name, which also carries the writer's attempt (``NAME-part-PPPPP-AAAAAAAA.tfrecord``): a new
  object that no manifest names yet, so no reader sees it. The manifest, one PUT, then names
  exactly the files of the attempt that committed; a replay's manifest replaces the earlier
  one whole, and only afterwards are the earlier attempts' files deleted (those on the dates
  of either commit: an attempt that died having written other dates leaves objects that no
  manifest names, invisible to readers).

Which files a reader sees follows the feature spec: every stream batch's files, except that a
date covered by a backfill shows the backfill's files in place of those of the stream batches
it was rebuilt from. Readers on an object store get local copies, cached under
``offline_examples.cache_dir``: a committed object never changes, so a cached copy never goes
stale.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.feature_spec import BatchManifest, ExampleFile
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage.adapters.storage_root import StorageRoot, fsync_dir

_STAGING_DIR = "_staging"


class FileOfflineExamples:
    def __init__(self, config: Config) -> None:
        self.store = StorageRoot(config.examples_location)
        self._cache = config.examples_cache_dir

    def open_staged(self, name: str, date: str, part: int, attempt: str) -> tuple[str, BinaryIO]:
        if self.store.is_local:
            file_name = f"part-{part:05d}-{attempt}-{date}{spec.TFRECORD_SUFFIX}"
            relative = f"{_STAGING_DIR}/{name}/{file_name}"
        else:
            relative = spec.data_file_path(date, name, part, attempt)
        return self.store.full(relative), self.store.open_output(relative)

    def commit(self, manifest: BatchManifest, staged: Mapping[str, str]) -> None:
        if self.store.is_local:
            stale = set(self.store.glob(f"{spec.PARTITION_PREFIX}*/{manifest.name}-part-*"))
            self._move_into_place(manifest, staged)
        else:  # the files already sit under their final names: the manifest names them
            stale = self._written(manifest)
            files = tuple(
                dataclasses.replace(f, path=self.store.relative(staged[f.path]))
                for f in manifest.files
            )
            manifest = dataclasses.replace(manifest, files=files)
        self.store.publish(f"{spec.MANIFEST_DIR}/{manifest.name}.json", manifest.to_json().encode())
        # from an earlier attempt at this batch, now unreferenced
        self.store.remove(stale - {f.path for f in manifest.files})
        if self.store.is_local:
            self.abort(manifest.name)

    def abort(self, name: str) -> None:
        if self.store.is_local:
            self.store.remove_tree(f"{_STAGING_DIR}/{name}")
            return
        committed = self.manifest(name)
        kept = {f.path for f in committed.files} if committed else set()
        written = self.store.glob(f"{spec.PARTITION_PREFIX}*/{name}-part-*")
        self.store.remove(set(written) - kept)

    def manifest(self, name: str) -> BatchManifest | None:
        relative = f"{spec.MANIFEST_DIR}/{name}.json"
        text = self.store.read_bytes(relative)
        return None if text is None else BatchManifest.from_json(text, self.store.full(relative))

    def manifests(self) -> list[BatchManifest]:
        names = [
            f"{spec.MANIFEST_DIR}/{n}"
            for n in self.store.names(spec.MANIFEST_DIR)
            if n.endswith(".json") and not n.startswith(".")
        ]
        texts = self.store.read_all(names)
        return [
            BatchManifest.from_json(text, self.store.full(name))
            for name, text in zip(names, texts, strict=True)
        ]

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
            file
            for manifest in manifests
            for file in manifest.files
            if (start_date is None or file.date >= start_date)
            and (end_date is None or file.date <= end_date)
            and _visible(manifest, holder(file.date))
        ]
        found = sorted(found, key=lambda f: (f.date, Path(f.path).name))
        if self.store.is_local:
            return [dataclasses.replace(f, path=self.store.full(f.path)) for f in found]
        return self._cached(found, {f.path for m in manifests for f in m.files})

    def _written(self, manifest: BatchManifest) -> set[str]:
        """The objects written for this batch's name on its dates and on those of its earlier
        commit: listed one date at a time, as listing every date would grow with history."""
        earlier = self.manifest(manifest.name)
        dates = {f.date for f in (*manifest.files, *(earlier.files if earlier else ()))}
        name = f"{manifest.name}-part-"
        return {p for d in dates for p in self.store.glob(f"{spec.PARTITION_PREFIX}{d}/{name}*")}

    def _move_into_place(self, manifest: BatchManifest, staged: Mapping[str, str]) -> None:
        try:
            for file in manifest.files:
                final = Path(self.store.full(file.path))
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged[file.path], final)  # a replay swaps each file atomically
                fsync_dir(final.parent)
        except OSError as exc:
            where = self.store.location
            raise StoreUnavailable(f"cannot commit examples batch to {where}: {exc}") from exc

    def _cached(self, files: list[ExampleFile], referenced: set[str]) -> list[ExampleFile]:
        """``files`` with local paths, copying the ones not cached yet; drops cached copies no
        manifest names any more (replaced by a replay or a backfill)."""
        missing = [f.path for f in files if not (self._cache / f.path).is_file()]
        partial = self._cache / f".download-{uuid.uuid4().hex[:8]}"
        try:
            self.store.download(missing, partial)
            for relative in missing:
                (self._cache / relative).parent.mkdir(parents=True, exist_ok=True)
                os.replace(partial / relative, self._cache / relative)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        for path in self._cache.glob(f"{spec.PARTITION_PREFIX}*/*"):
            if str(path.relative_to(self._cache)) not in referenced:
                path.unlink(missing_ok=True)
        return [dataclasses.replace(f, path=str(self._cache / f.path)) for f in files]


def _visible(manifest: BatchManifest, backfill: BatchManifest | None) -> bool:
    """Whether a file of ``manifest`` counts for a date whose latest backfill is ``backfill``."""
    if backfill is None:
        return manifest.backfill is None
    if manifest.backfill is not None:
        return manifest is backfill
    return manifest.batch_id > backfill.backfill.through_batch
