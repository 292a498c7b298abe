import subprocess
import sys

from streamrec.features.spark_daemon import PRELOADED

_PROBE = """
import gc, sys, threading
from streamrec.features.spark_daemon import preload
preload()
print(threading.active_count(), gc.get_freeze_count(), len(gc.get_objects()))
print(",".join(sorted(set(sys.argv[1:]) - set(sys.modules))))
"""


def test_preloading_starts_no_thread_and_leaves_the_collector_nothing_to_walk():
    """The daemon forks after preloading, and a fork copies only the thread that forks."""
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, *PRELOADED], capture_output=True, text=True, check=True
    )
    counts, missing = run.stdout.splitlines()
    threads, frozen, tracked = map(int, counts.split())
    assert threads == 1
    assert frozen > 50_000 and tracked < frozen / 100
    assert missing == ""
