"""Rows of external files (CSV, JSON Lines, Parquet), read in constant memory.

Plain and gzip-compressed files are told apart by their first bytes, not their names. Text is
decoded line by line with ``surrogateescape``, so a byte the encoding cannot decode spoils only
a value that holds it: the importer refuses a row whose *used* value is undecodable, and a
badly encoded description column never stops an import.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import orjson

from streamrec.infra.core.errors import StreamrecError

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "parquet")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class SourceRow:
    number: int  # 1-based, the header not counted
    values: Mapping[str, object]
    problem: str | None = None  # why the row could not be read at all


class TabularFile:
    """One file's columns and rows; reading it twice reads it from the start again."""

    def __init__(self, path: str | Path, format: Format, encoding: str = "utf-8") -> None:
        self.path = Path(path)
        self.format = format
        self.encoding = encoding
        if not self.path.is_file():
            raise StreamrecError(f"cannot read {self.path}: no such file")
        self.columns = self._columns()

    def rows(self) -> Iterator[SourceRow]:
        if self.format == "parquet":
            yield from self._parquet_rows()
            return
        with self._text() as lines:
            if self.format == "csv":
                reader = csv.DictReader(lines)
                for number, values in enumerate(reader, start=1):
                    yield SourceRow(number, values)
            else:
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        values, problem = _json_object(line)
                        yield SourceRow(number, values, problem)

    def _columns(self) -> list[str]:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(self.path).schema_arrow.names)
        with self._text() as lines:
            if self.format == "csv":
                return next(csv.reader(lines), [])
            for line in lines:
                values, problem = _json_object(line) if line.strip() else ({}, "empty")
                if problem is None:
                    return list(values)
            return []

    def _text(self) -> IO[str]:
        with self.path.open("rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        opener = gzip.open if compressed else open
        try:
            return opener(
                self.path, "rt", encoding=self.encoding, errors="surrogateescape", newline=""
            )
        except LookupError:
            raise StreamrecError(f"--encoding {self.encoding!r} is not a known encoding") from None

    def _parquet_rows(self) -> Iterator[SourceRow]:
        import pyarrow.parquet as pq

        number = 0
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=8192):
            for values in batch.to_pylist():
                number += 1
                yield SourceRow(number, values)


def _json_object(line: str) -> tuple[dict, str | None]:
    try:
        value = orjson.loads(line.encode("utf-8", "surrogateescape"))
    except orjson.JSONDecodeError as exc:
        return {}, f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return {}, f"a JSON {type(value).__name__}, not an object"
    return value, None
