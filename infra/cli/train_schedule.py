"""``streamrec train --every 6h``: retraining on a fixed schedule, in one long-lived process.

Runs start at fixed intervals from the first (an overrunning run delays the next, missed slots
are skipped, never queued). A run that fails is reported and the next slot tries again: a
scheduler that exits on the first empty window would need its own babysitter. SIGTERM ends the
process between or during runs; a run killed mid-fit resumes from its checkpoint next time.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable

from streamrec.infra.core.errors import StreamrecError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """``90s``, ``30m``, ``6h`` or ``1d`` in seconds."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise StreamrecError(f"--every {text!r} is not an interval like 30m, 6h or 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def run_every(
    interval: float,
    run: Callable[[], None],
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Calls ``run`` now and then every ``interval`` seconds until ``stop`` is set; returns how
    many runs failed."""
    failures = 0
    next_start = clock()
    while not stop.is_set():
        try:
            run()
        except StreamrecError as exc:
            failures += 1
            print(f"streamrec: scheduled training failed: {exc}", file=sys.stderr, flush=True)
        now = clock()
        next_start += interval * max(1, -(-(now - next_start) // interval))
        print(f"next training run in {next_start - now:.0f} s", flush=True)
        stop.wait(max(0.0, next_start - now))
    return failures
