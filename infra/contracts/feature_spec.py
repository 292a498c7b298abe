"""Feature spec v4: the written contract between the feature job, training and serving.

**Training examples (offline store).** TFRecord files under ``EXAMPLES_DIR``, in one of two
layouts chosen by ``features.example_layout``; each file's manifest entry names its layout::

    EXAMPLES_DIR/date=YYYY-MM-DD/NAME-part-PPPPP.tfrecord   (date of the events, UTC)
    EXAMPLES_DIR/_manifests/NAME.json                        (one per committed batch)

``NAME`` is ``batch-BBBBBBBB`` for a micro-batch of the stream and ``backfill-START_END`` for a
backfill of the dates ``START`` to ``END``. A batch's files are readable once, and only once, its
manifest exists; readers list manifests, never directories, so a half-written batch is
invisible. On an object store, which cannot rename, a file's name also carries the attempt
that wrote it (``NAME-part-PPPPP-AAAAAAAA.tfrecord``), so a replay writes new objects rather
than changing ones a manifest names; readers take every path from the manifests either way.

Layout ``events``: one tf.train.Example per accepted event, holding:

==============  ============  ===========================================================
feature         type          meaning
==============  ============  ===========================================================
event_id        bytes         the event's unique id (schema v1)
timestamp       int64         event time, ms since epoch
user_id         bytes         the user
item_id         bytes         the target: the item of this event
event_type      bytes         view, click, add_to_cart or purchase
history         bytes list    the user's previous items, most recent first, at most
                              ``history_length`` of them, all strictly earlier than
                              ``timestamp`` (point in time: no leakage from the future)
history_        int64 list    (v3) each history item's event time, same order
timestamp
history_        bytes list    (v3) each history item's event type, same order (``""``
event_type                    for entries the online store kept without one)
context_tokens  bytes list    (v4) the event's context as ``key=value`` tokens, sorted
                              (:func:`context_tokens`); empty when it had none
==============  ============  ===========================================================

Layout ``sequences`` (new in v2): one tf.train.SequenceExample per user and event date of a
batch, its events once each, in (timestamp, event_id) order; every step is an example:

========================  ============  ================================================
feature                   type          meaning
========================  ============  ================================================
context ``user_id``       bytes         the user
context ``history``       bytes list    as above, for the window's first event
context ``history_       int64 list    (v3) as above
timestamp``
context ``history_       bytes list    (v3) as above
event_type``
list ``event_id``         bytes/step    each event's id
list ``timestamp``        int64/step    each event's time
list ``item_id``          bytes/step    each event's item: the target at that step
list ``event_type``       bytes/step    each event's type
list ``context_tokens``   bytes list/   (v4) each event's context tokens, as above
                          step
========================  ============  ================================================

A step's past is the context and the steps before it. A user's windows of different batches
do not overlap: readers merge them into one timeline. A file's ``examples`` counts events in
both layouts.

**Examples manifest v2.** ``_manifests/NAME.json`` is a JSON object::

    {"manifest_version": 2, "feature_spec_version": 2, "batch_id": 3,
     "committed_at_ms": 1767571200000, "source": {"0": [0, 999]},
     "files": [{"path": "date=2026-01-05/batch-00000003-part-00000.tfrecord",
                "date": "2026-01-05", "examples": 1000, "layout": "events",
                "min_timestamp": 1767571200000, "max_timestamp": 1767657599999}]}

``layout`` is ``events`` or ``sequences`` (absent in feature spec 1: ``events``).
``source`` records the input offsets per partition (first and last), ``path`` is relative to
``EXAMPLES_DIR``. It is written last, atomically, after every file it names is durable.

A backfill's manifest has ``"batch_id": -1`` and ``"backfill": {"start_date", "end_date",
"through_batch"}``: for each date from start to end it replaces the files of stream batches
up to ``through_batch`` (the batches it was rebuilt from). When backfills overlap, the one
committed last holds a date. Version 1 manifests are version 2 ones without backfills.

**User history (online store).** Redis sorted set ``{prefix}:user_history:{user_id}``: score is
the event time in ms, member the JSON array ``[item_id, event_id, event_type]`` (unique per
event, so replays are idempotent; before v3 ``[item_id, event_id]``, still read with an empty
type), trimmed to the newest ``online_history_length`` events.

Version 3 added the history's times and types, which the query tower reads as recency and
event-type features; readers take them as unknown in examples of older versions. Version 4
added each event's context tokens: the context of the event a query predicts is what a ranking
request carries (device, surface, country...), so the query tower learns to read the request
the way it will be asked. Readers take examples of older versions as events without context.

Readers check both versions: a manifest of a newer format, or examples built under another
feature spec, stop the reader with a one-line error naming both versions instead of being
misread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from streamrec.infra.core.errors import StreamrecError, UnknownContractVersion

FEATURE_SPEC_VERSION = 4
# 2 added the sequences layout, 3 history times and types, 4 context tokens
READABLE_FEATURE_SPEC_VERSIONS = (1, 2, 3, 4)
EVENTS_LAYOUT = "events"
SEQUENCES_LAYOUT = "sequences"
EXAMPLE_LAYOUTS = (EVENTS_LAYOUT, SEQUENCES_LAYOUT)
MANIFEST_VERSION = 2
READABLE_MANIFEST_VERSIONS = (1, 2)

EVENT_ID = "event_id"
TIMESTAMP = "timestamp"
USER_ID = "user_id"
ITEM_ID = "item_id"
EVENT_TYPE = "event_type"
HISTORY = "history"
HISTORY_TIMESTAMP = "history_timestamp"  # feature spec 3: the history's event times
HISTORY_EVENT_TYPE = "history_event_type"  # feature spec 3: the history's event types
CONTEXT_TOKENS = "context_tokens"  # feature spec 4: the event's context, "key=value" tokens
DATE = "date"  # partition column: the event's UTC date

MANIFEST_DIR = "_manifests"
PARTITION_PREFIX = f"{DATE}="
TFRECORD_SUFFIX = ".tfrecord"


def user_history_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:user_history:{user_id}"


def context_tokens(context: Mapping[str, str]) -> tuple[str, ...]:
    """A context map as the feature spec and the export layout carry it: ``key=value``
    tokens sorted, so the same context is always the same tokens."""
    return tuple(sorted(f"{key}={value}" for key, value in context.items()))


def batch_name(batch_id: int) -> str:
    """The name of a stream micro-batch's manifest and files."""
    return f"batch-{batch_id:08d}"


def backfill_name(start_date: str, end_date: str) -> str:
    return f"backfill-{start_date}_{end_date}"


def data_file_path(date: str, name: str, part: int, attempt: str = "") -> str:
    """Where a batch's file of one date lives, relative to ``EXAMPLES_DIR``; on an object store
    the name also carries the writer's ``attempt``."""
    suffix = f"-{attempt}" if attempt else ""
    return f"{PARTITION_PREFIX}{date}/{name}-part-{part:05d}{suffix}{TFRECORD_SUFFIX}"


@dataclass(frozen=True)
class Backfill:
    """The dates a backfill rebuilt, and the last stream batch it rebuilt them from."""

    start_date: str
    end_date: str
    through_batch: int  # -1: no stream batch had been committed

    def covers(self, date: str) -> bool:
        return self.start_date <= date <= self.end_date


@dataclass(frozen=True)
class ExampleFile:
    """One committed TFRecord file: its place, the events' date and time range, and its size."""

    path: str
    date: str
    examples: int  # events, in either layout
    min_timestamp: int
    max_timestamp: int
    layout: str = EVENTS_LAYOUT


@dataclass(frozen=True)
class BatchManifest:
    """The commit record of one feature-job batch: the only thing that makes its files visible."""

    batch_id: int  # -1 for a backfill
    files: tuple[ExampleFile, ...]
    source: Mapping[str, object] = field(default_factory=dict)
    committed_at_ms: int = 0
    backfill: Backfill | None = None
    feature_spec_version: int = FEATURE_SPEC_VERSION
    manifest_version: int = MANIFEST_VERSION

    @property
    def name(self) -> str:
        if self.backfill is not None:
            return backfill_name(self.backfill.start_date, self.backfill.end_date)
        return batch_name(self.batch_id)

    @property
    def examples(self) -> int:
        return sum(f.examples for f in self.files)

    def to_json(self) -> str:
        record = asdict(self)
        record["source"] = dict(self.source)
        if self.backfill is None:
            del record["backfill"]
        record["examples"] = self.examples  # for people reading the file; derived on load
        return json.dumps(record, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, origin: str) -> BatchManifest:
        """Parses a manifest, refusing a format or feature spec this code does not know."""
        try:
            record = json.loads(text)
            # Manifests written before the field existed have exactly the version 1 layout.
            manifest_version = record.get("manifest_version", 1)
            if manifest_version not in READABLE_MANIFEST_VERSIONS:
                _refuse(f"manifest version of {origin}", manifest_version, MANIFEST_VERSION)
            if record.get("feature_spec_version") not in READABLE_FEATURE_SPEC_VERSIONS:
                what = f"feature spec version of {origin}"
                _refuse(what, record.get("feature_spec_version"), FEATURE_SPEC_VERSION)
            backfill = record.get("backfill")
            return cls(
                batch_id=int(record["batch_id"]),
                files=tuple(ExampleFile(**entry) for entry in record["files"]),
                source=record.get("source", {}),
                committed_at_ms=int(record.get("committed_at_ms", 0)),
                backfill=Backfill(**backfill) if backfill else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StreamrecError(f"{origin} is not a valid examples manifest: {exc}") from exc


def _refuse(what: str, found: object, supported: int) -> None:
    fix = "upgrade streamrec, or rebuild the examples with this version"
    raise UnknownContractVersion(what, found, supported, fix)
