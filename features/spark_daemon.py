"""The daemon that forks Spark's Python workers, with the feature job's modules loaded once.

pyspark's daemon forks one worker per concurrent task, and each worker imports what its task
needs afresh: pyarrow, pandas, kafka-python, redis and streamrec's own modules, more than a
second of CPU per worker measured here. Imported in the daemon before it forks, they come
with every worker for free.

After each task, a pyspark worker runs a full ``gc.collect()``, which walks every object the
worker holds: about 117k after those imports, 0.1 s a task measured here, and a micro-batch
runs two Python tasks per Kafka partition. ``gc.freeze()`` after the imports moves those
objects out of the collector's sight for good (what it is meant for: a parent that forks
workers), so a worker's collection walks only what the worker itself created.

pyspark's own daemon imports nothing before forking, in case an import starts a thread, which
a fork would not copy. None of the modules below starts one; a test holds them to it.
"""

from __future__ import annotations

import gc
import importlib

PRELOADED = (
    "pandas",
    "pyarrow",
    "pyspark.worker",
    "pyspark.sql.worker.plan_data_source_read",
    "streamrec.features.event_source",
    "streamrec.features.partition_task",
    "streamrec.infra.storage.adapters.kafka_event_bus",
    "streamrec.infra.storage.adapters.redis_event_ledger",
    "streamrec.infra.storage.adapters.redis_item_statistics",
    "streamrec.infra.storage.adapters.redis_online_store",
)


def preload() -> None:
    """Imports the workers' modules and freezes everything loaded so far."""
    for name in PRELOADED:
        importlib.import_module(name)
    gc.freeze()


def main() -> None:
    preload()
    from pyspark import daemon

    daemon.manager()


if __name__ == "__main__":
    main()
