"""Restores the feature job's Redis state from the committed examples, after Redis lost it.

A Redis restarted without persistence, flushed, or failed over to an empty replica loses what
the feature job keeps there: every user's recent history, the item popularity windows and
frequencies, and the event ledger (claims and user watermarks). Serving then answers every
user from popular items, and a repeat of an event accepted before the loss would be accepted
again. The events are still in the committed examples, so this rebuilds it from them.

Why the examples and not the topic: the examples hold exactly the events the job accepted,
with its decisions already made (no duplicates, no late or refused records), they are kept
for training long after the topic's retention has dropped the events, and they are visible
only once committed, so a rebuild never reads a half-written batch.

Invariant: every write is one the feature job itself makes, so a rebuild is idempotent, may
run while serving and the feature worker run, and never undoes newer state:

- histories: the same sorted-set members (unique per event), then trimmed to capacity;
- item windows and frequencies: each stream batch's events under the batch's own once-key
  (``{topic}:{batch}:{partition}``), so a batch whose counts survived is not counted twice;
  a backfill's files under the backfill's name. Once-keys live 14 days: events older than
  that fall outside every window but may add to the frequencies again, by at most 2^-14 of
  a fresh event's weight at the default 24 h half-life;
- claims: ``SET NX`` for each user's events within the horizon of their newest one (older
  repeats are late anyway), filed on the user's timeline as the job files them;
- watermarks: raised to each user's newest event, never lowered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamrec.features.tfrecord import decode_example, decode_sequence_example, read_records
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.feature_spec import ExampleFile
from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_event_ledger, open_offline_examples, open_online_store
from streamrec.infra.storage.ports.event_ledger import Claim
from streamrec.infra.storage.ports.online_store import HistoryEntry, ItemEvent

_FILE_NAME = re.compile(r"^(?P<name>.+)-part-(?P<part>\d+)$")
_HISTORY_CHUNK = 100_000  # entries per append: bounded memory on the way to Redis


@dataclass(frozen=True)
class RebuildReport:
    files: int
    events: int
    users: int
    claims: int
    seconds: float


@dataclass(frozen=True)
class _Event:
    user_id: str
    entry: HistoryEntry


class _Timelines:
    """Per user, the newest ``keep`` history entries and the events within ``horizon_ms`` of
    the newest one, kept while the files stream past."""

    def __init__(self, keep: int, horizon_ms: int) -> None:
        self._keep, self._horizon = keep, horizon_ms
        self.entries: dict[str, list[HistoryEntry]] = {}

    def add(self, user: str, entry: HistoryEntry) -> None:
        self.entries.setdefault(user, []).append(entry)
        if len(self.entries[user]) > 4 * self._keep + 1024:
            self._prune(user)

    def _prune(self, user: str) -> None:
        entries = sorted(self.entries[user])
        newest = entries[-1].timestamp
        cut = min(len(entries) - self._keep, _first_at(entries, newest - self._horizon))
        self.entries[user] = entries[max(0, cut) :]

    def newest(self) -> dict[str, int]:
        return {user: max(e.timestamp for e in entries) for user, entries in self.entries.items()}

    def history(self) -> Iterator[tuple[str, HistoryEntry]]:
        for user, entries in self.entries.items():
            for entry in sorted(entries)[-self._keep :]:
                yield user, entry

    def recent(self, newest: dict[str, int]) -> Iterator[tuple[str, HistoryEntry]]:
        for user, entries in self.entries.items():
            for entry in entries:
                if entry.timestamp >= newest[user] - self._horizon:
                    yield user, entry


def _first_at(entries: list[HistoryEntry], timestamp: int) -> int:
    return next((i for i, e in enumerate(entries) if e.timestamp >= timestamp), len(entries))


def rebuild_online(config: Config, since: str | None = None) -> RebuildReport:
    """Restores histories, item windows and frequencies, and the event ledger from the
    examples committed with event dates from ``since`` (YYYY-MM-DD) on, or all of them."""
    started = time.monotonic()
    store, ledger = open_online_store(config), open_event_ledger(config)
    topic = config.kafka.events_topic
    horizon_ms = int(config.features.dedup_horizon_hours * 3_600_000)
    keep = config.features.online_history_length
    timelines = _Timelines(keep, horizon_ms)
    files = open_offline_examples(config).files(start_date=since)
    newest_batch, events = -1, 0
    for (name, part), group in _by_batch_and_part(files).items():
        batch = _stream_batch(name)
        newest_batch = max(newest_batch, batch if batch is not None else -1)
        found = [event for file in group for event in _file_events(file)]
        events += len(found)
        # One call per batch and partition, as the job makes: the once-key covers all dates.
        once = f"{topic}:{batch if batch is not None else name}:{part}"
        store.add_item_events(once, [ItemEvent(e.entry.item_id, e.entry.timestamp) for e in found])
        for event in found:
            timelines.add(event.user_id, event.entry)
    newest = timelines.newest()
    _append(store, timelines.history())
    store.trim_histories(list(newest))
    claims = [
        Claim(entry.event_id, f"rebuilt:{newest_batch}", user, entry.timestamp)
        for user, entry in timelines.recent(newest)
    ]
    held = [claim for claim, won in zip(claims, ledger.claim(claims), strict=True) if won]
    ledger.restore_users(topic, newest_batch, newest, held)
    if newest:
        store.advance_item_windows(max(newest.values()))
    seconds = time.monotonic() - started
    return RebuildReport(len(files), events, len(newest), len(held), seconds)


def _append(store: object, entries: Iterator[tuple[str, HistoryEntry]]) -> None:
    chunk: list[tuple[str, HistoryEntry]] = []
    for pair in entries:
        chunk.append(pair)
        if len(chunk) == _HISTORY_CHUNK:
            store.append_history(chunk)
            chunk = []
    if chunk:
        store.append_history(chunk)


def _by_batch_and_part(files: list[ExampleFile]) -> dict[tuple[str, int], list[ExampleFile]]:
    """Files by the batch (or backfill) and partition that wrote them, in batch order."""
    groups: dict[tuple[str, int], list[ExampleFile]] = {}
    for file in sorted(files, key=lambda f: (_name_and_part(f), f.date)):
        groups.setdefault(_name_and_part(file), []).append(file)
    return groups


def _name_and_part(file: ExampleFile) -> tuple[str, int]:
    """The batch or backfill name and the partition of a file (feature spec's file name)."""
    stem = Path(file.path).name.removesuffix(spec.TFRECORD_SUFFIX)
    match = _FILE_NAME.match(stem)
    if match is None:
        return stem, 0
    return match["name"], int(match["part"])


def _stream_batch(name: str) -> int | None:
    prefix = spec.batch_name(0)[: -len("00000000")]
    digits = name.removeprefix(prefix)
    return int(digits) if name.startswith(prefix) and digits.isdigit() else None


def _file_events(file: ExampleFile) -> Iterator[_Event]:
    """Every event of a committed file, in either layout."""
    for record in read_records(file.path):
        if file.layout == spec.SEQUENCES_LAYOUT:
            context, steps = decode_sequence_example(record)
            user = context[spec.USER_ID][0].decode()
            for event_id, ts, item, kind in zip(
                steps[spec.EVENT_ID], steps[spec.TIMESTAMP], steps[spec.ITEM_ID],
                steps[spec.EVENT_TYPE], strict=True,
            ):  # fmt: skip
                yield _Event(
                    user, HistoryEntry(ts[0], *(v[0].decode() for v in (event_id, item, kind)))
                )
        else:
            f = decode_example(record)
            entry = HistoryEntry(
                f[spec.TIMESTAMP][0], f[spec.EVENT_ID][0].decode(), f[spec.ITEM_ID][0].decode(),
                f[spec.EVENT_TYPE][0].decode() if f.get(spec.EVENT_TYPE) else "",
            )  # fmt: skip
            yield _Event(f[spec.USER_ID][0].decode(), entry)
