"""How long the continuous worker waits out a storage outage before it gives up.

A broker's leader election, a network blip or a restarted Redis makes a few calls fail with
:class:`~streamrec.infra.core.errors.StoreUnavailable` and is over in seconds to a minute. A worker
that exits on the first of them turns each blip into a restart (a new JVM, a replayed batch);
one that waits forever hides a real outage from its supervisor. So a failed step is tried
again, with backoff, until the outage (from its first failure to now, over every step that
failed meanwhile) has lasted ``budget_seconds``; then the last error is raised and the worker
exits non-zero. Any success ends the outage.

Trying a step again is safe because every step of a batch is idempotent under replay (see
:mod:`.job`): a retried batch decides and writes exactly what its first attempt would have.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from streamrec.infra.core.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 15.0


class OutageBudget:
    """Retries a worker's steps through outages; each step's outage is timed on its own, so a
    step that keeps succeeding (one that needs nothing that is down) does not keep another's
    outage young."""

    def __init__(
        self,
        budget_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget_seconds = budget_seconds
        self._clock = clock
        self._sleep = sleep
        self._outages: dict[str, float] = {}  # step -> when its outage started
        self.retries = 0  # steps tried again, over the worker's life

    def run(self, step: Callable[[], T], what: str) -> T:
        """``step()``, tried again after each StoreUnavailable while the budget lasts."""
        wait = FIRST_WAIT_SECONDS
        while True:
            try:
                result = step()
            except StoreUnavailable as exc:
                left = self.failed(exc, what)
                self._sleep(min(wait, left))
                self.retries += 1
                wait = min(wait * 2, LONGEST_WAIT_SECONDS)
                continue
            self.succeeded(what)
            return result

    def failed(self, exc: StoreUnavailable, what: str) -> float:
        """Counts a failure of ``what``, which its caller tries again later; the seconds left
        of the budget. Raises once the outage has lasted the budget."""
        now = self._clock()
        started = self._outages.setdefault(what, now)
        lasted = now - started
        if lasted >= self.budget_seconds:
            del self._outages[what]
            raise StoreUnavailable(
                f"{what}: storage unavailable for {lasted:.0f} s, past "
                f"features.outage_budget_seconds ({self.budget_seconds:g}): {exc}"
            ) from exc
        log.warning("%s failed, %.0f s into an outage; trying again: %s", what, lasted, exc)
        return self.budget_seconds - lasted

    def succeeded(self, what: str) -> None:
        self._outages.pop(what, None)
