"""The offline store: committed TFRecord example files, discovered through batch manifests.

Readers see exactly the batches whose manifest exists (see :mod:`features.spec`), never a
half-written one, whatever the feature job is doing at the time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from features import spec


@dataclass(frozen=True)
class ExampleFile:
    path: Path
    date: str
    examples: int
    min_timestamp: int
    max_timestamp: int


class TFRecordOfflineStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def manifests(self) -> list[dict]:
        """Every committed batch's manifest, in batch order."""
        directory = self.root / spec.MANIFEST_DIR
        if not directory.is_dir():
            return []
        return [json.loads(path.read_text()) for path in sorted(directory.glob("batch-*.json"))]

    def files(
        self, start_date: str | None = None, end_date: str | None = None
    ) -> list[ExampleFile]:
        """Committed files whose event date lies in ``[start_date, end_date]`` (inclusive)."""
        found = []
        for manifest in self.manifests():
            for entry in manifest["files"]:
                if (start_date and entry["date"] < start_date) or (
                    end_date and entry["date"] > end_date
                ):
                    continue
                found.append(
                    ExampleFile(
                        path=self.root / entry["path"],
                        date=entry["date"],
                        examples=entry["examples"],
                        min_timestamp=entry["min_timestamp"],
                        max_timestamp=entry["max_timestamp"],
                    )
                )
        return sorted(found, key=lambda f: (f.date, f.path.name))
