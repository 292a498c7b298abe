"""``streamrec items import``: a catalog export, published as item records on the items topic.

Rows become item records (item schema v1) through ``--map``; rows that do not go to a report
file with their reason. A record replaces the item's previous one whole, so importing a file
again leaves the catalog as it was: no checkpoint is needed.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamrec.infra.contracts.items import InvalidItem, Item, item_from_dict
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_event_bus
from streamrec.ingest.row_mapping import RowRejected, normalised_id, parse_time
from streamrec.ingest.tabular_files import SourceRow, TabularFile

FIELDS = ("item_id", "categories", "available", "created_at")
_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class ItemMapping:
    columns: Mapping[str, str]  # item field -> column; item_id required
    category_separator: str = "|"
    timestamp_format: str = "iso"

    def check(self, available: Sequence[str], source: str) -> None:
        if "item_id" not in self.columns:
            raise StreamrecError("--map needs item_id (for example item_id=COLUMN)")
        unknown = [f for f in self.columns if f not in FIELDS]
        if unknown:
            raise StreamrecError(f"--map: {', '.join(unknown)} is not an item field")
        absent = sorted({c for c in self.columns.values() if c not in available})
        if absent:
            raise StreamrecError(
                f"{source} has no column {', '.join(map(repr, absent))} "
                f"(it has: {', '.join(available)})"
            )

    def item(self, row: SourceRow) -> Item:
        if row.problem:
            raise RowRejected("unreadable row", row.problem)
        record: dict[str, object] = {"item_id": normalised_id(self._text(row, "item_id"))}
        if "categories" in self.columns:
            parts = self._text(row, "categories").split(self.category_separator)
            record["categories"] = [p.strip() for p in parts if p.strip()]
        if "available" in self.columns:
            record["available"] = _flag(self._text(row, "available"))
        if "created_at" in self.columns and self._text(row, "created_at").strip():
            record["created_at"] = parse_time(self._text(row, "created_at"), self.timestamp_format)
        try:
            return item_from_dict(record)
        except InvalidItem as exc:
            raise RowRejected("invalid item", str(exc)) from exc

    def _text(self, row: SourceRow, field: str) -> str:
        value = row.values.get(self.columns[field])
        return "" if value is None else str(value).strip()


CATALOG_CSV_MAP = "item_id=item_id,categories=categories,available=available"


def write_item_csv(path: str | Path, items: Iterable[Item], separator: str = "|") -> int:
    """A catalog file as ``items import FILE --format csv --map CATALOG_CSV_MAP`` reads it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["item_id", "categories", "available"])
        for item in items:
            rows.writerow([item.item_id, separator.join(item.categories), str(item.available)])
            written += 1
    return written


def _flag(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise RowRejected("bad availability", f"{text!r} is not true or false")


def import_items(
    config: Config, source: TabularFile, mapping: ItemMapping, report_file: Path
) -> dict:
    """Publishes the file's item records; returns a summary like ``events import``'s."""
    mapping.check(source.columns, str(source.path))
    started = time.monotonic()
    rejected: Counter = Counter()
    report_file.parent.mkdir(parents=True, exist_ok=True)
    bus = open_event_bus(config)
    bus.ensure_topic(config.kafka.items_topic)
    with report_file.open("w") as report:
        rows = _records(source, mapping, rejected, report)
        published = bus.publish(config.kafka.items_topic, rows)
    seconds = time.monotonic() - started
    return {
        "items": published,
        "rejected": sum(rejected.values()),
        "rejected_by_reason": dict(rejected.most_common()),
        "seconds": round(seconds, 2),
        "report_file": str(report_file),
    }


def _records(
    source: TabularFile, mapping: ItemMapping, rejected: Counter, report: object
) -> Iterator[tuple[bytes, bytes]]:
    for row in source.rows():
        try:
            item = mapping.item(row)
        except RowRejected as exc:
            rejected[exc.kind] += 1
            line = {"row": row.number, "kind": exc.kind, "reason": exc.detail, "values": row.values}
            report.write(json.dumps(line, default=str) + "\n")
            continue
        yield item.item_id.encode(), item.to_json_bytes()
