"""Argument parsing shared by several commands."""

from __future__ import annotations

import argparse

from streamrec.infra.core.errors import StreamrecError

TABULAR_FORMATS = ("csv", "jsonl", "parquet")


def add_tabular_file_arguments(parser: argparse.ArgumentParser, fields: str) -> None:
    """``FILE --format F --map FIELD=COL,...``, as every importer takes them; ``fields`` shows
    which fields ``--map`` names."""
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--format", choices=TABULAR_FORMATS, required=True)
    parser.add_argument("--map", required=True, metavar="FIELD=COL,...", help=fields)


def field_map(text: str) -> dict[str, str]:
    """``--map a=COL,b=COL`` as ``{"a": "COL", "b": "COL"}``."""
    pairs = {}
    for part in text.split(","):
        field, equals, column = part.partition("=")
        if not equals or not field.strip() or not column.strip():
            raise StreamrecError(f"--map {text!r}: expected FIELD=COLUMN pairs separated by commas")
        pairs[field.strip()] = column.strip()
    return pairs
