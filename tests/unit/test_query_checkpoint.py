"""Reading how far the feature query got from a checkpoint laid out as Spark writes it."""

import json

from streamrec.features.query_checkpoint import committed_offsets

METADATA = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1, "conf": {}})


def _plan(checkpoint, batch, offsets, committed):
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch)).write_text(f"v1\n{METADATA}\n{json.dumps(offsets)}")
    (checkpoint / "offsets" / f".{batch}.crc").write_text("crc")
    if committed:
        (checkpoint / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def test_nothing_is_done_before_the_first_commit(tmp_path):
    assert committed_offsets(tmp_path) == {}
    _plan(tmp_path, 0, {"0": 10}, committed=False)
    assert committed_offsets(tmp_path) == {}


def test_a_planned_batch_counts_only_once_committed(tmp_path):
    _plan(tmp_path, 0, {"0": 10, "1": 7}, committed=True)
    _plan(tmp_path, 1, {"0": 25, "1": 9}, committed=True)
    _plan(tmp_path, 2, {"0": 40, "1": 9}, committed=False)  # a crash left it planned
    assert committed_offsets(tmp_path) == {0: 25, 1: 9}
