"""Spark's Python workers, started while a streaming query plans its first micro-batch.

Spark starts the Python workers of a query when its first tasks need them, after the query has
set up its source, planned the batch's offsets and called ``foreachBatch``: on this machine the
first range began 5.1 s after the query started, 1.9 s of it spent starting the workers'
daemon (:mod:`.spark_daemon`) and forking them. Most of that set-up runs one process at a time,
leaving a core idle. A tiny job run beside it starts the daemon and one worker per task slot;
pyspark keeps idle workers for the next tasks, and the first range then began after 3.3 s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class PythonWorkers:
    """Starts one worker per task slot in the background; ``pids`` and ``seconds`` say how it
    went, and a failure only means the query starts its workers itself."""

    def __init__(self, spark: SparkSession) -> None:
        self.pids: list[int] = []
        self.seconds: float | None = None  # until every slot had a worker
        self._thread = threading.Thread(
            target=self._start, args=(spark,), name="python-workers", daemon=True
        )

    def start(self) -> PythonWorkers:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _start(self, spark: SparkSession) -> None:
        started = time.monotonic()
        slots = spark.sparkContext.defaultParallelism
        try:
            rows = spark.range(slots, numPartitions=slots).mapInArrow(_pid, "pid long").collect()
        except Exception as exc:  # the session stopped first, or a worker failed to start
            log.info("Python workers were not started ahead of the query: %s", exc)
            return
        self.pids = sorted({row.pid for row in rows})
        self.seconds = time.monotonic() - started


def _pid(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for _ in batches:
        yield pa.RecordBatch.from_pylist([{"pid": os.getpid()}])
