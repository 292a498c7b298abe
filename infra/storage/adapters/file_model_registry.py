"""The model registry on the model directory's filesystem.

``MODEL_DIR/current`` is a small JSON file, ``{"promotions": [{"version", "at_ms", "reason",
"rollback"}, ...]}``, whose last entry is the serving version; it is replaced by writing a
temporary file, fsyncing it and renaming it over the old one, so a reader sees the old pointer
or the new one, never a torn one. A rollback is appended too, so the history is kept; replaying
the list as a stack (a promotion pushes, a rollback pops) tells what a further rollback
returns to.
"""

from __future__ import annotations

import json
import os
import time

from streamrec.infra.contracts.export_layout import ModelVersion, verify_files, versions
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage.ports.model_registry import Promotion

_POINTER = "current"


class FileModelRegistry:
    def __init__(self, config: Config) -> None:
        self.root = config.model_dir

    def versions(self) -> list[ModelVersion]:
        return versions(self.root)

    def version(self, number: int) -> ModelVersion:
        found = [v for v in self.versions() if v.version == number]
        if not found:
            known = ", ".join(str(v.version) for v in self.versions()) or "none"
            raise StreamrecError(f"no model version {number} in {self.root} (versions: {known})")
        return found[0]

    def current(self) -> ModelVersion | None:
        promotions = self.promotions()
        return self.version(promotions[-1].version) if promotions else None

    def promote(self, number: int, reason: str) -> None:
        verify_files(self.version(number))
        self._write([*self.promotions(), Promotion(number, int(time.time() * 1000), reason)])

    def rollback(self) -> ModelVersion:
        promotions = self.promotions()
        serving = _serving_stack(promotions)
        if len(serving) < 2:
            raise StreamrecError("nothing to roll back to: no earlier version served")
        target = serving[-2]
        verify_files(self.version(target))
        reason = f"rollback from version {serving[-1]}"
        self._write([*promotions, Promotion(target, int(time.time() * 1000), reason, True)])
        return self.version(target)

    def promotions(self) -> list[Promotion]:
        path = self.root / _POINTER
        if not path.exists():
            return []
        try:
            return [Promotion(**p) for p in json.loads(path.read_text())["promotions"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StreamrecError(f"the registry pointer {path} is unreadable: {exc}") from exc

    def _write(self, promotions: list[Promotion]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{_POINTER}.partial"
        with partial.open("w") as handle:
            json.dump({"promotions": [p._asdict() for p in promotions]}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, self.root / _POINTER)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _serving_stack(promotions: list[Promotion]) -> list[int]:
    stack: list[int] = []
    for promotion in promotions:
        if promotion.rollback:
            stack.pop()
        else:
            stack.append(promotion.version)
    return stack
