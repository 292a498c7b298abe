"""A circuit breaker: a server that keeps failing is left alone for a while, then probed.

A Redis that hangs (stopped, swapping, a long fork) costs every call its whole timeout, so a
client that keeps calling it turns one slow server into slow answers everywhere. After
``failures`` failed calls in a row the breaker opens: calls are refused at once, without being
tried, for ``open_seconds``. Then one call at a time may probe the server; a success closes
the breaker, a failure opens it for another ``open_seconds``. A refused call costs a lock-free
read of one float, so a caller with a fallback answers from it at full speed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class CircuitBreaker:
    """The open-or-closed state of one server, shared by every thread that calls it."""

    def __init__(
        self,
        name: str,
        failures: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failures
        self._open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._refuse_until = 0.0  # 0: closed

    def refusal(self) -> str | None:
        """None if a call may go ahead, else why it may not. Past the open period, the first
        caller is let through as the probe, and the others are refused until it reports."""
        if not self._refuse_until or self._threshold <= 0:
            return None
        with self._lock:
            now = self._clock()
            wait = self._refuse_until - now
            if wait > 0:
                return f"not called for {wait:.2f} s more after {self._failures} failures in a row"
            self._refuse_until = now + self._open_seconds  # while the probe is out
            return None

    def succeeded(self) -> None:
        if self._failures:
            with self._lock:
                if self._refuse_until:
                    log.warning("%s answers again: calling it", self.name)
                self._failures, self._refuse_until = 0, 0.0

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self._failures += 1
            if self._threshold <= 0 or self._failures < self._threshold:
                return
            if not self._refuse_until:
                log.warning(
                    "%s failed %d times in a row (%s): not calling it for %.1f s, then probing",
                    self.name, self._failures, error, self._open_seconds,
                )  # fmt: skip
            self._refuse_until = self._clock() + self._open_seconds

    @property
    def is_open(self) -> bool:
        return bool(self._refuse_until)
