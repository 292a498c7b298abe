"""Several API-server processes sharing one port, for the cores one process cannot use.

A Python process runs Python on one core at a time (the GIL), and a request spends most of its
server time in Python: gRPC's, redis-py's and ours. So the API server runs one full server
process per usable core, each binding the same port with ``SO_REUSEPORT`` (gRPC sets it on
Linux), and the kernel spreads incoming connections across them. This supervisor starts them,
restarts one that dies, serves their merged Prometheus metrics, and on SIGTERM stops them all
gracefully. Each process loads the model, follows the registry and keeps its own near cache.

The supervisor imports neither TensorFlow nor gRPC: it checks what it can before starting
anything (Redis, a current version), so that a setup error is one line, not one per process.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from streamrec.infra.core.config import Config, render_toml
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.core.metrics_endpoint import serve_metrics
from streamrec.infra.storage import open_model_registry, open_online_store

log = logging.getLogger(__name__)
_START_TIMEOUT_SECONDS = 600.0
SUPERVISOR_PID_ENV = "STREAMREC_SUPERVISOR_PID"  # a started process stops when it is gone


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container's CPU limit), so that a pod limited to 2 CPUs on a 64-core node starts 2."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def serve_processes(
    config: Config, processes: int, verbose: bool, say: Callable[[str], object] = log.info
) -> None:
    """Runs ``processes`` API servers on the configured port until SIGTERM or SIGINT; ``say``
    gets the line that they serve, once they all accept requests, and "stopped"."""
    version = _check_ready(config)
    port = _free_port(config.serving.host, config.serving.port)
    with tempfile.TemporaryDirectory(prefix="streamrec-serve-") as scratch:
        group = _ServerGroup(config, port, Path(scratch), verbose)
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        try:
            group.start(processes, stopping)
            if config.serving.metrics_port:
                serve_metrics(group.metrics_registry(), config.serving.metrics_port,
                              "API server", "STREAMREC_SERVING_METRICS_PORT")  # fmt: skip
            address = f"{config.serving.host}:{port}"
            say(f"serving model version {version} with {processes} processes on {address}")
            group.watch(stopping)
        finally:
            group.stop()
    say("stopped")


def _check_ready(config: Config) -> int:
    open_online_store(config).ping()
    current = open_model_registry(config).current()
    if current is None:
        raise StreamrecError(
            f"no model version serves from {config.model_location}: run `streamrec train` (it "
            "promotes a version that passes the gate) or `streamrec models promote VERSION`"
        )
    return current.version


def _free_port(host: str, port: int) -> int:
    """The port to share, checked free: a socket without SO_REUSEPORT cannot bind a port that
    any other socket holds, so a stale server on it is an error here instead of a silent
    share of its traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gRPC does; it lets a restarted server take a port its predecessor's connections
        # still hold in TIME_WAIT, yet on Linux never one that a socket listens on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StreamrecError(
                f"cannot listen on {host}:{port} ({exc.strerror}): is the port taken? "
                "set STREAMREC_SERVING_PORT"
            ) from exc
        return probe.getsockname()[1]


class _ServerGroup:
    """The server processes: each a ``streamrec serve`` with one process, on the same port."""

    def __init__(self, config: Config, port: int, scratch: Path, verbose: bool) -> None:
        self._metrics_dir = scratch / "metrics"
        self._metrics_dir.mkdir()
        config_file = scratch / "serve.toml"
        config_file.write_text(render_toml(config))
        config_file.chmod(0o600)  # it may hold passwords
        options = ["--config", str(config_file)] + (["--verbose"] if verbose else [])
        self._command = [sys.executable, "-m", "streamrec.infra.cli", *options, "serve"]
        self._env = os.environ | {
            "STREAMREC_SERVING_PROCESSES": "1",
            "STREAMREC_SERVING_PORT": str(port),
            "STREAMREC_SERVING_METRICS_PORT": "0",  # the supervisor serves them all
            "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir),
            SUPERVISOR_PID_ENV: str(os.getpid()),
        }
        self._env.pop("STREAMREC_CONFIG", None)
        self._processes: list[subprocess.Popen] = []

    def start(self, count: int, stopping: threading.Event) -> None:
        """Starts the processes side by side and returns once each accepts requests."""
        self._processes = [self._popen() for _ in range(count)]
        for process in self._processes:
            self._await_banner(process, stopping)

    def metrics_registry(self):
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._metrics_dir))
        return registry

    def watch(self, stopping: threading.Event) -> None:
        """Replaces a process that dies after it served (a crash, the OOM killer). If its
        replacement cannot start either, the supervisor exits non-zero: a crash loop is the
        orchestrator's to see."""
        while not stopping.wait(0.5):
            for n, process in enumerate(self._processes):
                code = process.poll()
                if code is None:
                    continue
                self._forget(process)
                log.warning("API-server process %d exited with code %d; starting another",
                            process.pid, code)  # fmt: skip
                self._processes[n] = self._popen()
                self._await_banner(self._processes[n], stopping)

    def stop(self, grace: float = 15.0) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # each drains its requests
        deadline = time.monotonic() + grace
        for process in self._processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _popen(self) -> subprocess.Popen:
        return subprocess.Popen(
            self._command, env=self._env, stdout=subprocess.PIPE, text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor alone
        )  # fmt: skip

    def _await_banner(self, process: subprocess.Popen, stopping: threading.Event) -> None:
        """Returns once the process accepts requests (it prints its banner then)."""
        if _first_line(process, _START_TIMEOUT_SECONDS).startswith("serving model version"):
            return
        process.kill()
        process.wait()
        if stopping.is_set():
            raise StreamrecError("stopped while an API-server process was starting")
        raise StreamrecError(
            f"an API-server process exited with code {process.returncode} before it served; "
            "its error is above"
        )

    def _forget(self, process: subprocess.Popen) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process.pid, path=str(self._metrics_dir))


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    """The process's first line of output, or "" if it ends or says nothing in time."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else ""
