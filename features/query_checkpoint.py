"""What the feature query's Spark checkpoint says is done: the source offsets its last
committed micro-batch ended at.

Spark writes ``offsets/N`` when it plans batch N and ``commits/N`` only after the batch's
``foreachBatch`` returned, that is after its examples, history, ledger and consumer-group
offsets were all written. So the offsets of the newest committed batch are the one record of
how far the job got that a crash, a dead JVM or a lost Redis cannot leave ahead of the
outputs; the consumer group's offsets are a copy for lag monitoring, written before Spark's
commit and by whoever uses the group name.
"""

from __future__ import annotations

import json
from pathlib import Path


def committed_offsets(checkpoint: Path) -> dict[int, int]:
    """Each partition's next offset after the newest committed batch; {} before the first."""
    batch = _newest(checkpoint / "commits")
    if batch < 0:
        return {}
    lines = (checkpoint / "offsets" / str(batch)).read_text().splitlines()
    # "v1", the batch's metadata, then one line per source: this query has one.
    return {int(p): int(offset) for p, offset in json.loads(lines[2]).items()}


def _newest(log: Path) -> int:
    return max((int(p.name) for p in log.glob("[0-9]*") if p.name.isdigit()), default=-1)
