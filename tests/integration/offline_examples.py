"""Writes an offline store exactly as the feature spec describes it, without running Spark.

Training and serving tests start from this contract rather than from the feature job, so
they exercise the boundary the stages really share: TFRecord files plus batch manifests.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pandas as pd

from features import spec
from features.examples import point_in_time_examples
from features.tfrecord import encode_example, write_records
from ingest.schema import Event


def write_offline_store(
    root: Path, events: list[Event], history_length: int, batch_id: int = 0
) -> int:
    frame = pd.DataFrame([e.to_dict() for e in events]).drop(columns=["context"], errors="ignore")
    examples = pd.concat(
        [point_in_time_examples(group, [], history_length) for _, group in frame.groupby("user_id")]
    )
    by_date = defaultdict(list)
    for row in examples.itertuples(index=False):
        by_date[row.date].append(row)
    files = []
    for date, rows in sorted(by_date.items()):
        relative = f"{spec.PARTITION_PREFIX}{date}/{spec.data_file_name(batch_id, 0)}"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        write_records(root / relative, (_encode(row) for row in rows))
        stamps = [row.timestamp for row in rows]
        files.append(
            {
                "path": relative,
                "date": date,
                "examples": len(rows),
                "min_timestamp": min(stamps),
                "max_timestamp": max(stamps),
            }
        )
    manifest = {"batch_id": batch_id, "examples": len(examples), "files": files}
    (root / spec.MANIFEST_DIR).mkdir(parents=True, exist_ok=True)
    (root / spec.MANIFEST_DIR / spec.manifest_name(batch_id)).write_text(json.dumps(manifest))
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
