"""The model registry port: exported versions, and which one serves.

Versions are complete by construction (they appear by atomic rename, see the export layout);
the registry adds the ``current`` pointer that serving follows, moved only by :meth:`promote`
and :meth:`rollback`, each an atomic step, after checking the version's files against the
checksums written at export, so a corrupt version can never become current.
"""

from __future__ import annotations

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

    def promote(self, number: int, reason: str) -> None:
        """Makes ``number`` current, after verifying its files."""

    def rollback(self) -> ModelVersion:
        """Makes the version that served before the current one current again; returns it.

        Rollbacks undo promotions in turn: promoting 1, 2, 3 and rolling back twice serves 1.
        """

    def promotions(self) -> list[Promotion]:
        """Every move of the pointer, oldest first; the last is the current version."""
