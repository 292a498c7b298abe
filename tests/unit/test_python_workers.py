import logging
from types import SimpleNamespace

from streamrec.features.python_workers import PythonWorkers


class _StoppedSession:
    """A session stopped under the warm-up job, as when a short run ends first."""

    sparkContext = SimpleNamespace(defaultParallelism=2)

    def range(self, *args, **kwargs):
        raise RuntimeError("Cannot call methods on a stopped SparkContext")


def test_a_failed_start_leaves_the_query_to_start_its_workers(caplog):
    caplog.set_level(logging.INFO)
    workers = PythonWorkers(_StoppedSession()).start()
    workers.wait(timeout=10)
    assert workers.pids == [] and workers.seconds is None
    assert "not started ahead of the query" in caplog.text
