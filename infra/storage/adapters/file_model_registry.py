"""The model registry under ``training.model_dir``: a local directory or an object-store prefix.

**Versions.** ``MODEL_DIR/<n>/`` in the export layout, complete once its ``checksums.json``
exists. On a local filesystem a version appears whole by renaming its staging directory. On an
object store, which has no rename, the publisher first claims the number with a create-only
``<n>/.claim`` (a concurrent publisher that loses takes the next number), uploads every file,
and writes ``checksums.json`` last, create-only; readers count only versions that have it.
Processes read a version from an object store through a local copy under
``model_registry.cache_dir``, made in a hidden directory, verified against the checksums and
renamed into place, so a copy is complete or absent.

**Runs in progress.** A trainer's checkpoints live in its run directory under the model
directory when that is local. With an object store they are written locally and copied to
``MODEL_DIR/.runs/<run>/`` after each save, TensorFlow's ``checkpoint`` pointer files last,
and files the save replaced deleted after: a trainer restarted on another machine copies the
run back and resumes from the newest complete checkpoint.

**The pointer.** Every move is a :class:`Promotion`; the last one names the serving version.
Locally they are kept in ``MODEL_DIR/current``, ``{"promotions": [...]}``, replaced by writing
a temporary file, fsyncing it and renaming it over the old one. On an object store they are an
append-only log, ``MODEL_DIR/promotions/NNNNNNNN.json``, one object per move written
create-only: two processes moving the pointer at once cannot both write move N, so the loser
reads the log again and retries, and no move is lost. Either way a reader sees the old pointer
or the new one, never a torn one. A rollback is appended too, so the history is kept;
replaying the list as a stack (a promotion pushes, a rollback pops) tells what a further
rollback returns to.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from streamrec.infra.contracts.export_layout import (
    CHECKSUMS_FILE,
    ModelVersion,
    verify_files,
    versions,
    write_checksums,
)
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage.adapters.storage_root import StorageRoot, fsync_dir
from streamrec.infra.storage.ports.model_registry import Promotion

_POINTER = "current"
_LOG = "promotions"
_CLAIM = ".claim"
_RUNS = ".runs"
_CHECKPOINT_POINTER = "checkpoint"
_CACHED_VERSIONS = 4  # local copies kept besides the one asked for: the serving stack's few


class FileModelRegistry:
    def __init__(self, config: Config) -> None:
        self.store = StorageRoot(config.model_location)
        self.root = Path(self.store.full("")) if self.store.is_local else config.model_cache_dir
        self._log: list[Promotion] = []  # object store: the moves read so far (immutable)
        self._saved: dict[Path, dict[str, tuple[int, int]]] = {}  # run files copied, by stamp

    def versions(self) -> list[ModelVersion]:
        if self.store.is_local:
            return versions(self.root)
        return [self._local_copy(number) for number in self._complete()]

    def version(self, number: int) -> ModelVersion:
        target = self.root / str(number)
        if self.store.is_local:
            known = [v.version for v in versions(self.root)]
            if number in known:
                return ModelVersion(target)
        else:
            if target.is_dir():  # local copies are verified and complete
                return ModelVersion(target)
            known = self._complete()
            if number in known:
                return self._local_copy(number)
        shown = ", ".join(str(v) for v in known) or "none"
        raise StreamrecError(
            f"no model version {number} in {self.store.location} (versions: {shown})"
        )

    def current(self) -> ModelVersion | None:
        promotions = self.promotions()
        return self.version(promotions[-1].version) if promotions else None

    def work_dir(self) -> Path:
        """The model directory itself when local; on an object store, the local cache (so a
        trainer's checkpoints outlive its process only where its disk does)."""
        return self.root

    def restore_run(self, run_dir: Path) -> None:
        if self.store.is_local or run_dir.exists():
            return
        saved = self.store.find(_run_key(run_dir))
        if not saved:
            return
        partial = run_dir.parent / f".restore-{uuid.uuid4().hex}"
        try:
            self.store.download(saved, partial)
            os.rename(partial / _run_key(run_dir), run_dir)
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def save_run(self, run_dir: Path) -> None:
        if self.store.is_local or not run_dir.is_dir():
            return
        saved = self._saved.setdefault(run_dir, {})
        files = {str(p.relative_to(run_dir)): p for p in run_dir.rglob("*") if p.is_file()}
        stamps = {name: (p.stat().st_size, p.stat().st_mtime_ns) for name, p in files.items()}
        changed = [name for name in files if saved.get(name) != stamps[name]]
        for name in sorted(changed, key=lambda n: Path(n).name == _CHECKPOINT_POINTER):
            self.store.upload(files[name], f"{_run_key(run_dir)}/{name}")
            saved[name] = stamps[name]
        gone = [name for name in saved if name not in files]
        self.store.remove(f"{_run_key(run_dir)}/{name}" for name in gone)
        for name in gone:
            del saved[name]

    def drop_run(self, run_dir: Path) -> None:
        self._saved.pop(run_dir, None)
        if not self.store.is_local:
            self.store.remove_tree(_run_key(run_dir))

    def staging_dir(self) -> Path:
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        return staging

    def publish(self, staging: Path, metadata: dict) -> ModelVersion:
        if self.store.is_local:
            return self._rename_into_place(staging, metadata)
        while True:
            number = max(self._numbers(), default=0) + 1
            claim = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
            if self.store.publish(f"{number}/{_CLAIM}", claim, create_only=True):
                break
        _seal(staging, {**metadata, "version": number})
        for path in sorted(staging.rglob("*")):
            if path.is_file() and path.name != CHECKSUMS_FILE:
                self.store.upload(path, f"{number}/{path.relative_to(staging)}")
        checksums = (staging / CHECKSUMS_FILE).read_bytes()
        if not self.store.publish(f"{number}/{CHECKSUMS_FILE}", checksums, create_only=True):
            raise StreamrecError(f"model version {number} in {self.store.location} was claimed "
                                 "twice; retrain")  # fmt: skip
        target = self.root / str(number)
        os.rename(staging, target)  # what was uploaded is this process's copy
        return ModelVersion(target)

    def promote(self, number: int, reason: str) -> None:
        verify_files(self.version(number))
        self._append(lambda promotions: Promotion(number, _now_ms(), reason))

    def rollback(self) -> ModelVersion:
        def move(promotions: list[Promotion]) -> Promotion:
            serving = _serving_stack(promotions)
            if len(serving) < 2:
                raise StreamrecError("nothing to roll back to: no earlier version served")
            verify_files(self.version(serving[-2]))
            return Promotion(serving[-2], _now_ms(), f"rollback from version {serving[-1]}", True)

        return self.version(self._append(move).version)

    def promotions(self) -> list[Promotion]:
        if not self.store.is_local:
            return self._read_log()
        path = self.root / _POINTER
        if not path.exists():
            return []
        try:
            return [Promotion(**p) for p in json.loads(path.read_text())["promotions"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StreamrecError(f"the registry pointer {path} is unreadable: {exc}") from exc

    def _append(self, move) -> Promotion:
        """Appends the move that ``move`` makes of the promotions so far; returns it."""
        while True:
            promotions = self.promotions()
            made = move(promotions)
            if self.store.is_local:
                self._write_pointer([*promotions, made])
                return made
            body = json.dumps(made._asdict()).encode()
            if self.store.publish(f"{_LOG}/{len(promotions):08d}.json", body, create_only=True):
                self._log.append(made)
                return made

    def _read_log(self) -> list[Promotion]:
        names = [n for n in self.store.names(_LOG) if n.endswith(".json") and n[:8].isdigit()]
        for name in names[len(self._log) :]:
            body = self.store.read_bytes(f"{_LOG}/{name}")
            try:
                self._log.append(Promotion(**json.loads(body)))
            except (TypeError, ValueError) as exc:
                where = self.store.full(f"{_LOG}/{name}")
                raise StreamrecError(f"the registry pointer {where} is unreadable: {exc}") from exc
        return list(self._log)

    def _write_pointer(self, promotions: list[Promotion]) -> None:
        body = json.dumps({"promotions": [p._asdict() for p in promotions]}).encode()
        self.store.publish(_POINTER, body)

    def _numbers(self) -> list[int]:
        """Every version number taken on the object store, complete or not."""
        return sorted(int(n) for n in self.store.names() if n.isdigit() and int(n) > 0)

    def _complete(self) -> list[int]:
        found = self.store.glob(f"*/{CHECKSUMS_FILE}")
        return sorted(int(p.split("/")[0]) for p in found if p.split("/")[0].isdigit())

    def _local_copy(self, number: int) -> ModelVersion:
        target = self.root / str(number)
        if not target.is_dir():
            partial = self.root / f".download-{uuid.uuid4().hex}"
            try:
                files = [n for n in self.store.find(str(number)) if not n.endswith(_CLAIM)]
                self.store.download(files, partial)
                verify_files(ModelVersion(partial / str(number)))
                try:
                    os.rename(partial / str(number), target)
                except OSError:
                    if not target.is_dir():
                        raise
            finally:
                shutil.rmtree(partial, ignore_errors=True)
            self._prune(keep=number)
        return ModelVersion(target)

    def _prune(self, keep: int) -> None:
        cached = sorted(int(p.name) for p in self.root.iterdir() if p.name.isdigit())
        for number in cached[:-_CACHED_VERSIONS]:
            if number != keep:
                shutil.rmtree(self.root / str(number), ignore_errors=True)

    def _rename_into_place(self, staging: Path, metadata: dict) -> ModelVersion:
        """Renames staging to the next free version; retries if a concurrent trainer took it."""
        while True:
            latest = max((v.version for v in self.versions()), default=0)
            version = latest + 1
            _seal(staging, {**metadata, "version": version})
            target = self.root / str(version)
            try:
                os.rename(staging, target)  # atomic, and fails if another export took this
            except OSError:
                if target.exists():
                    continue
                raise
            fsync_dir(self.root)
            return ModelVersion(target)


def _run_key(run_dir: Path) -> str:
    return f"{_RUNS}/{run_dir.name}"


def _seal(staging: Path, metadata: dict) -> None:
    """Writes the version's metadata, then the checksums of everything."""
    ModelVersion(staging).metadata_file.write_text(json.dumps(metadata, indent=2))
    write_checksums(staging)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _serving_stack(promotions: list[Promotion]) -> list[int]:
    stack: list[int] = []
    for promotion in promotions:
        if promotion.rollback:
            stack.pop()
        else:
            stack.append(promotion.version)
    return stack
