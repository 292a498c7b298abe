"""Feature spec v1: the written contract between the feature job, training and serving.

**Training examples (offline store).** One tf.train.Example per accepted event, in TFRecord
files under ``EXAMPLES_DIR``::

    EXAMPLES_DIR/date=YYYY-MM-DD/batch-BBBBBBBB-part-PPPPP.tfrecord   (date of the event, UTC)
    EXAMPLES_DIR/_manifests/batch-BBBBBBBB.json                        (one per committed batch)

A batch's files are readable once, and only once, its manifest exists; readers list manifests,
never directories, so a half-written batch is invisible. Each example holds:

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
==============  ============  ===========================================================

**User history (online store).** Redis sorted set ``{prefix}:user_history:{user_id}``: score is
the event time in ms, member the JSON array ``[item_id, event_id]`` (unique per event, so
replays are idempotent), trimmed to the newest ``online_history_length`` events.
"""

from __future__ import annotations

FEATURE_SPEC_VERSION = 1

EVENT_ID = "event_id"
TIMESTAMP = "timestamp"
USER_ID = "user_id"
ITEM_ID = "item_id"
EVENT_TYPE = "event_type"
HISTORY = "history"
DATE = "date"  # partition column: the event's UTC date

MANIFEST_DIR = "_manifests"
PARTITION_PREFIX = f"{DATE}="
TFRECORD_SUFFIX = ".tfrecord"


def user_history_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:user_history:{user_id}"


def manifest_name(batch_id: int) -> str:
    return f"batch-{batch_id:08d}.json"


def data_file_name(batch_id: int, part: int) -> str:
    return f"batch-{batch_id:08d}-part-{part:05d}{TFRECORD_SUFFIX}"
