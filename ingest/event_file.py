"""Files of events, one JSON object per line (JSON Lines), as ``events generate`` writes them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from streamrec.infra.contracts.events import Event, InvalidEvent, parse_event
from streamrec.infra.core.errors import StreamrecError


def read_events(path: str | Path) -> Iterator[Event]:
    """Yields the file's events; the first invalid line raises naming the file, line and reason."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise StreamrecError(f"cannot read event file {path}: {exc.strerror}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield parse_event(line)
            except InvalidEvent as exc:
                raise StreamrecError(f"{path} line {number}: {exc}") from exc


def count_events(path: str | Path) -> int:
    """Validates the whole file and returns how many events it holds."""
    return sum(1 for _ in read_events(path))


def write_events(path: str | Path, events: Iterable[Event]) -> int:
    """Writes events atomically (a reader never sees half a file); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    written = 0
    with partial.open("w", encoding="utf-8") as handle:
        for event in events:
            handle.write(event.to_json() + "\n")
            written += 1
    partial.replace(path)
    return written
