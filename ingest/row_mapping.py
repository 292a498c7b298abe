"""How a row of an external file becomes an event: column mapping, filters, times and ids.

The same mapping always turns the same row into the same event, ``event_id`` included, so an
import can be repeated or resumed and the feature job drops the repeats. Ids written as floats
by spreadsheet exports (``17850.0``) are read as the integer (``17850``), so two exports of the
same data give the same events.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from streamrec.infra.contracts.events import EVENT_TYPES, Event, InvalidEvent, event_from_dict
from streamrec.infra.core.errors import StreamrecError
from streamrec.ingest.tabular_files import SourceRow

REQUIRED = ("user_id", "item_id", "timestamp")
CONTEXT_PREFIX = "context."  # --map context.KEY=COLUMN: the column is the context entry KEY
TIMESTAMP_FORMATS = ("iso", "epoch_ms", "epoch_s")  # or any strptime pattern
_INTEGRAL_FLOAT = re.compile(r"^(-?\d+)\.0+$")
_FILTER = re.compile(r"^\s*(?P<column>[^!<>=~]+?)\s*(?P<op>>=|<=|!=|!~|=|>|<|~)\s*(?P<value>.*)$")


class RowRejected(Exception):
    """A row that does not become an event; ``kind`` groups rows in the import report."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class RowFilter:
    """``COLUMN OP VALUE`` from ``--where``; numbers compare as numbers, ``~`` is a regex."""

    text: str
    column: str
    test: Callable[[str], bool]

    @classmethod
    def parse(cls, text: str) -> RowFilter:
        match = _FILTER.match(text)
        if not match:
            raise StreamrecError(
                f"--where {text!r} is not COLUMN OP VALUE (OP: = != > >= < <= ~ !~)"
            )
        column, op, value = match["column"], match["op"], match["value"]
        return cls(text, column, _test(op, value, text))

    def keeps(self, value: str) -> bool:
        return self.test(value)


def _test(op: str, expected: str, text: str) -> Callable[[str], bool]:
    if op in ("~", "!~"):
        try:
            pattern = re.compile(expected)
        except re.error as exc:
            raise StreamrecError(f"--where {text!r}: bad regular expression ({exc})") from exc
        found = op == "~"
        return lambda value: (pattern.search(value) is not None) == found
    compare = {
        "=": operator.eq, "!=": operator.ne, ">": operator.gt,
        ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    }[op]  # fmt: skip
    number = _number(expected)

    def test(value: str) -> bool:
        left = _number(value) if number is not None else None
        if number is not None and left is not None:
            return compare(left, number)
        return compare(value, expected)

    return test


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class RowMapping:
    """The options of ``streamrec events import`` that shape events."""

    # event field -> column: user_id, item_id, timestamp[, event_type][, context.KEY...]
    columns: Mapping[str, str]
    event_type: str | None = None
    timestamp_format: str = "iso"
    event_id_from: tuple[str, ...] = ()
    where: tuple[RowFilter, ...] = ()
    _times: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def check(self, available: Sequence[str], source: str) -> None:
        """Fails in one line, before any row is read, if the options cannot work on the file."""
        missing = [f for f in REQUIRED if f not in self.columns]
        if missing:
            raise StreamrecError(f"--map needs {', '.join(missing)} (for example user_id=COLUMN)")
        unknown = [
            f for f in self.columns if f not in (*REQUIRED, "event_type") and not _context_key(f)
        ]
        if unknown:
            raise StreamrecError(
                f"--map: {', '.join(unknown)} is not an event field "
                f"(fields: {', '.join(REQUIRED)}, event_type, {CONTEXT_PREFIX}KEY)"
            )
        if ("event_type" in self.columns) == (self.event_type is not None):
            raise StreamrecError(
                "give the event type either as --map event_type=COLUMN or --event-type"
            )
        if self.event_type is not None and self.event_type not in EVENT_TYPES:
            raise StreamrecError(
                f"--event-type {self.event_type!r} is not one of {', '.join(EVENT_TYPES)}"
            )
        used = [*self.columns.values(), *self.event_id_from, *(f.column for f in self.where)]
        absent = sorted({c for c in used if c not in available})
        if absent:
            raise StreamrecError(
                f"{source} has no column {', '.join(map(repr, absent))} "
                f"(it has: {', '.join(available)})"
            )

    def fingerprint(self) -> bytes:
        """Identifies the options, so a checkpoint is only reused for the same import."""
        return orjson.dumps(
            [dict(sorted(self.columns.items())), self.event_type, self.timestamp_format,
             self.event_id_from, [f.text for f in self.where]]
        )  # fmt: skip

    def event(self, row: SourceRow) -> Event:
        """The row's event; raises :class:`RowRejected` saying why there is none."""
        if row.problem:
            raise RowRejected("unreadable row", row.problem)
        for row_filter in self.where:
            if not row_filter.keeps(self._text(row, row_filter.column)):
                raise RowRejected(f"excluded by --where {row_filter.text}", row_filter.text)
        user_id = self._id(row, "user_id")
        item_id = self._id(row, "item_id")
        event_type = self.event_type or self._text(row, self.columns["event_type"]).lower()
        timestamp = self._timestamp(self._required(row, "timestamp"))
        identity = (
            [normalised_id(self._text(row, c)) for c in self.event_id_from]
            if self.event_id_from
            else [user_id, item_id, event_type, str(timestamp)]
        )
        record = {
            "event_id": "imp-"
            + hashlib.blake2b("\x1f".join(identity).encode(), digest_size=12).hexdigest(),
            "user_id": user_id,
            "item_id": item_id,
            "event_type": event_type,
            "timestamp": timestamp,
        }
        context = self._context(row)
        if context:
            record["context"] = context
        try:
            return event_from_dict(record)
        except InvalidEvent as exc:
            raise RowRejected("invalid event", str(exc)) from exc

    def _context(self, row: SourceRow) -> dict[str, str]:
        """The mapped context entries with a value; an empty cell is no entry."""
        found = {}
        for name, column in self.columns.items():
            key = _context_key(name)
            if key and (value := self._text(row, column).strip()):
                found[key] = value
        return found

    def _id(self, row: SourceRow, name: str) -> str:
        return normalised_id(self._required(row, name))

    def _required(self, row: SourceRow, name: str) -> str:
        column = self.columns[name]
        value = self._text(row, column)
        if not value.strip():
            raise RowRejected(f"no {name}", f"column {column!r} is empty")
        return value

    def _text(self, row: SourceRow, column: str) -> str:
        value = row.values.get(column)
        text = (
            "" if value is None else _number_text(value) if isinstance(value, float) else str(value)
        )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise RowRejected(
                "undecodable text", f"column {column!r} is not valid text; pass --encoding"
            ) from None
        return text

    def _timestamp(self, text: str) -> int:
        known = self._times.get(text)
        if known is None:
            known = parse_time(text.strip(), self.timestamp_format)
            if len(self._times) > 100_000:
                self._times.clear()
            self._times[text] = known
        return known


def _context_key(field_name: str) -> str:
    """``KEY`` of a ``context.KEY`` field, else ``""``."""
    return field_name[len(CONTEXT_PREFIX) :] if field_name.startswith(CONTEXT_PREFIX) else ""


def normalised_id(value: str) -> str:
    value = value.strip()
    integral = _INTEGRAL_FLOAT.match(value)
    return integral.group(1) if integral else value


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def parse_time(text: str, format: str) -> int:
    try:
        if format == "epoch_ms":
            return int(float(text))
        if format == "epoch_s":
            return int(float(text) * 1000)
        moment = (
            datetime.fromisoformat(text) if format == "iso" else datetime.strptime(text, format)
        )
    except ValueError:
        raise RowRejected(
            "bad timestamp", f"{text!r} does not match --timestamp-format {format}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # times without a zone are UTC
    return int(moment.timestamp() * 1000)
