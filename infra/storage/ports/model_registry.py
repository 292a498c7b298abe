"""The model registry port: exported versions, and which one serves.

Versions are complete by construction: :meth:`publish` makes an exported directory a version
in one atomic step (see the export layout), and a reader never sees a partial one. The
registry adds the ``current`` pointer that serving follows, moved only by :meth:`promote` and
:meth:`rollback`, each an atomic step, after checking the version's files against the
checksums written at export, so a corrupt version can never become current. The versions it
returns are local directories, wherever the registry keeps them.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

from streamrec.infra.contracts.export_layout import ModelVersion


class Promotion(NamedTuple):
    version: int
    at_ms: int
    reason: str
    rollback: bool = False  # True: this move undid the promotion before it


class ModelRegistry(Protocol):
    """Raises :class:`~streamrec.infra.core.errors.StreamrecError` naming the problem."""

    def versions(self) -> list[ModelVersion]:
        """Every complete version, oldest first."""

    def version(self, number: int) -> ModelVersion:
        """The version numbered ``number``; an unknown number is an error."""

    def current(self) -> ModelVersion | None:
        """The version that serves, or None before the first promotion."""

    def work_dir(self) -> Path:
        """A local directory for a trainer's runs in progress (checkpoints, logs)."""

    def restore_run(self, run_dir: Path) -> None:
        """Brings back the saved state of a run directory under :meth:`work_dir`, if this
        process does not have it: a trainer restarted elsewhere resumes from it."""

    def save_run(self, run_dir: Path) -> None:
        """Keeps the run directory's files where :meth:`restore_run` finds them; files named
        ``checkpoint`` (TensorFlow's pointer to the newest checkpoint) go last."""

    def drop_run(self, run_dir: Path) -> None:
        """Forgets a finished run's saved state."""

    def staging_dir(self) -> Path:
        """A new, local directory to export a version into, for :meth:`publish`."""

    def publish(self, staging: Path, metadata: dict) -> ModelVersion:
        """Makes the export in ``staging`` the next version, with ``metadata`` (plus its
        ``version``) as its metadata.json and checksums of every file; returns it. Two
        publishers at once get two versions. ``staging`` is consumed."""

    def promote(self, number: int, reason: str) -> None:
        """Makes ``number`` current, after verifying its files."""

    def rollback(self) -> ModelVersion:
        """Makes the version that served before the current one current again; returns it.

        Rollbacks undo promotions in turn: promoting 1, 2, 3 and rolling back twice serves 1.
        """

    def promotions(self) -> list[Promotion]:
        """Every move of the pointer, oldest first; the last is the current version."""
