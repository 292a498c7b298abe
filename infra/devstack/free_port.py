"""A free local TCP port for a service that will listen on it later.

A port taken from the kernel by binding port 0 is an ephemeral one: the kernel hands the same
range to every outgoing connection. Between choosing such a port and the service binding it
(minutes, when a run trains a model first), a Kafka or Redis client connection can take it, and
the service fails with "Address already in use". Ports below the ephemeral range are only ever
taken by a listener that asks for one by number, so a free one stays free. A port is not
given twice by one process, as callers often take several before anything listens.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # clear of the well-known and most registered service ports
_ATTEMPTS = 200
_random = random.SystemRandom()  # not the shared generator, which a test or job may seed
_given: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port no socket holds now, outside the ephemeral range where the kernel says which it
    is; where it does not, a port the kernel picks."""
    first_ephemeral = _first_ephemeral_port()
    if first_ephemeral is not None and first_ephemeral - _LOWEST >= 1000:
        for _ in range(_ATTEMPTS):
            port = _random.randrange(_LOWEST, first_ephemeral)
            if port not in _given and _is_free(host, port):
                _given.add(port)
                return port
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _first_ephemeral_port() -> int | None:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
