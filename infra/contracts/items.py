"""Item record schema v1: the catalog, as app backends or catalog exports describe items.

An item record is one JSON object on the ``items`` topic, keyed by ``item_id``::

    {"item_id": "i-00017", "categories": ["shoes", "sale"], "available": true,
     "created_at": 1767571200000}

- ``item_id``: the id events use for the item, a non-empty string of at most 256 characters.
- ``categories``: optional list of non-empty strings (default: none). Serving filters on them.
- ``available``: optional boolean (default true). An unavailable item is never recommended.
- ``created_at``: optional time the item entered the catalog, ms since the epoch.

A newer record of an item replaces the older one whole: to change one field, send them all.
Fields not listed here are refused, as in the event schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from streamrec.infra.contracts.events import MAX_ID_LENGTH, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS

ITEM_SCHEMA_VERSION = 1
MAX_CATEGORIES = 64
_FIELDS = frozenset(("item_id", "categories", "available", "created_at"))


class InvalidItem(ValueError):
    """An item record that breaks the contract; the message is the reason."""


@dataclass(frozen=True)
class Item:
    item_id: str
    categories: tuple[str, ...] = field(default_factory=tuple)
    available: bool = True
    created_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "item_id": self.item_id,
            "categories": list(self.categories),
            "available": self.available,
        }
        if self.created_at is not None:
            record["created_at"] = self.created_at
        return record

    def to_json_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())


def parse_item(raw: str | bytes) -> Item:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidItem(f"not valid JSON: {exc}") from exc
    return item_from_dict(record)


def item_from_dict(record: object) -> Item:
    """Validates an item record; raises :class:`InvalidItem` naming what is wrong."""
    if not isinstance(record, dict):
        raise InvalidItem(f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise InvalidItem(f"unknown field(s): {', '.join(unknown)}")
    item_id = record.get("item_id")
    if not isinstance(item_id, str) or not item_id.strip() or len(item_id) > MAX_ID_LENGTH:
        raise InvalidItem(
            f"item_id must be a non-empty string of at most {MAX_ID_LENGTH} characters"
        )
    return Item(
        item_id=item_id,
        categories=_categories(record.get("categories", [])),
        available=_available(record.get("available", True)),
        created_at=_created_at(record.get("created_at")),
    )


def _categories(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
        raise InvalidItem("categories must be a list of non-empty strings")
    if len(value) > MAX_CATEGORIES:
        raise InvalidItem(f"more than {MAX_CATEGORIES} categories")
    return tuple(dict.fromkeys(value))


def _available(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidItem(f"available must be true or false, got {value!r}")
    return value


def _created_at(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidItem(f"created_at must be an integer (ms since epoch), got {value!r}")
    if not MIN_TIMESTAMP_MS <= value < MAX_TIMESTAMP_MS:
        raise InvalidItem(f"created_at {value} is outside 2000-01-01..2100-01-01 (ms since epoch)")
    return value
