"""Argument parsing shared by several commands."""

from __future__ import annotations

from streamrec.infra.errors import StreamrecError


def field_map(text: str) -> dict[str, str]:
    """``--map a=COL,b=COL`` as ``{"a": "COL", "b": "COL"}``."""
    pairs = {}
    for part in text.split(","):
        field, equals, column = part.partition("=")
        if not equals or not field.strip() or not column.strip():
            raise StreamrecError(f"--map {text!r}: expected FIELD=COLUMN pairs separated by commas")
        pairs[field.strip()] = column.strip()
    return pairs
