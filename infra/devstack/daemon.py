"""A background process tracked by a pid file, as the local stack runs its services.

The pid file records the pid and the executable, so a stale file left by a crash, or a pid
reused by an unrelated process, is never mistaken for our service and never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Daemon:
    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running process, or None (removing a stale pid file)."""
        try:
            record = json.loads(self.pid_file.read_text())
            pid, executable = int(record["pid"]), str(record["executable"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if _process_runs(pid, executable):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: Sequence[str], env: dict[str, str] | None = None) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal must not reach the service
                env={**os.environ, **(env or {})},
            )
        binary = os.path.realpath(
            shutil.which(command[0]) or command[0]
        )  # what /proc/PID/exe shows
        record = {"pid": process.pid, "executable": os.path.basename(binary)}
        self.pid_file.write_text(json.dumps(record))
        return process.pid

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Polls ``ready`` until it holds; False if the process died or the time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                return False
            if ready():
                return True
            time.sleep(0.2)
        return False

    def stop(self, timeout: float = 10.0) -> bool:
        """Stops the process (TERM, then KILL); True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(
                self.log_file.read_text(errors="replace").strip().splitlines()[-lines:]
            )
        except OSError:
            return ""


def _process_runs(pid: int, executable: str) -> bool:
    # /proc/PID/exe names the binary even when the process rewrites its title (redis does).
    try:
        binary = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return os.path.basename(binary) == executable and _alive(pid)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
