"""Commits offline examples exactly as the feature spec describes them, without running Spark.

Training and serving tests start from this contract rather than from the feature job, so they
exercise the boundary the stages really share: TFRecord files committed by a batch manifest
through the offline-examples port, the same one the Spark sink commits through.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from streamrec.features.examples import point_in_time_examples
from streamrec.features.tfrecord import encode_example, write_records
from streamrec.infra.config import Config
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.feature_spec import BatchManifest, ExampleFile
from streamrec.infra.stores import open_offline_examples


def write_offline_examples(config: Config, events: list[Event], batch_id: int = 0) -> int:
    """Commits one batch holding every event's point-in-time example; returns how many."""
    frame = pd.DataFrame([e.to_dict() for e in events]).drop(columns=["context"], errors="ignore")
    length = config.features.history_length
    examples = pd.concat(
        [point_in_time_examples(group, [], length) for _, group in frame.groupby("user_id")]
    )
    by_date = defaultdict(list)
    for row in examples.itertuples(index=False):
        by_date[row.date].append(row)
    store = open_offline_examples(config)
    staging = store.staging_dir(batch_id)
    staging.mkdir(parents=True, exist_ok=True)
    files, staged = [], {}
    for date, rows in sorted(by_date.items()):
        path = spec.data_file_path(date, batch_id, 0)
        staged[path] = str(staging / f"{date}.tfrecord")
        write_records(staged[path], (_encode(row) for row in rows))
        stamps = [int(row.timestamp) for row in rows]
        files.append(ExampleFile(path, date, len(rows), min(stamps), max(stamps)))
    store.commit(BatchManifest(batch_id=batch_id, files=tuple(files)), staged)
    return len(examples)


def _encode(row) -> bytes:
    return encode_example(
        {
            spec.EVENT_ID: row.event_id,
            spec.TIMESTAMP: int(row.timestamp),
            spec.USER_ID: row.user_id,
            spec.ITEM_ID: row.item_id,
            spec.EVENT_TYPE: row.event_type,
            spec.HISTORY: list(row.history),
        }
    )
