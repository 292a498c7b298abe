"""Runs pipeline stages as ``streamrec`` subprocesses, the way a scheduler would.

Each stage is its own process role with its own config file: standard output (the stage's
progress lines) is echoed, standard error (TensorFlow's and Spark's chatter) goes to a log
file that is shown only when the stage fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streamrec.infra.core.config import CONFIG_FILE_ENV, ENV_PREFIX
from streamrec.infra.core.errors import StreamrecError


@dataclass(frozen=True)
class StageResult:
    seconds: float
    output: list[str]  # the stage's standard output, line by line


class StageProcesses:
    def __init__(self, config_file: Path, log_dir: Path, echo_prefix: str = "    ") -> None:
        self.config_file = config_file
        self.log_dir = log_dir
        self.echo_prefix = echo_prefix
        log_dir.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        return cli_environment(self.config_file)

    def command(self, args: Sequence[str]) -> list[str]:
        return cli_command(args)

    def run(self, name: str, args: Sequence[str], echo: bool = True) -> StageResult:
        """Runs a stage to completion, echoing its output; returns its duration and output."""
        started = time.monotonic()
        lines: list[str] = []
        log_file = self.log_dir / f"{name}.log"
        with log_file.open("w") as log:
            process = subprocess.Popen(
                self.command(args),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self.env(),
                start_new_session=True,
            )
            try:
                for line in process.stdout:
                    lines.append(line.rstrip())
                    if echo:
                        print(self.echo_prefix + lines[-1], flush=True)
                code = process.wait()
            except BaseException:
                stop_process(process)
                raise
        if code != 0:
            raise StreamrecError(
                f"stage '{name}' failed (exit {code}): {_error_line(log_file)}; log: {log_file}"
            )
        return StageResult(time.monotonic() - started, lines)

    def start(self, name: str, args: Sequence[str]) -> subprocess.Popen:
        """Starts a long-running stage (a server) with all output going to its log file."""
        log = (self.log_dir / f"{name}.log").open("w")
        return subprocess.Popen(
            self.command(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
            start_new_session=True,
        )


def cli_environment(config_file: Path) -> dict[str, str]:
    """A stage process's environment: the config file is the whole truth, no STREAMREC_*
    overrides from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env[CONFIG_FILE_ENV] = str(config_file)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli_command(args: Sequence[str]) -> list[str]:
    """``streamrec args`` with this interpreter."""
    return [sys.executable, "-m", "streamrec.infra.cli", *args]


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Asks the stage to stop (TERM), kills it after ``timeout``, then ends its helpers.

    Stages run in their own session, so their process group also holds what they spawned
    (Spark's JVM); whatever outlives the stage itself is terminated with the group.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while group_members(process.pid):
        if time.monotonic() > deadline:
            _signal_group(process.pid, signal.SIGKILL)
            break
        time.sleep(0.1)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _error_line(log_file: Path) -> str:
    """The stage's own one-line error if it printed one, else the last line of its log."""
    lines = [
        line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()
    ]
    for line in reversed(lines):
        if line.startswith("streamrec: error:"):
            return line.removeprefix("streamrec: error:").strip()
    return lines[-1] if lines else "no output"


def wait_serving(
    target: str, server: subprocess.Popen, log_file: Path, timeout: float = 180.0
) -> None:
    """Returns once the API server started as ``server`` reports SERVING on ``target``."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if server.poll() is not None:
                tail = log_file.read_text(errors="replace").strip().splitlines()[-1:]
                raise StreamrecError(
                    f"the ranking service exited: {' '.join(tail)}; log: {log_file}"
                )
            with contextlib.suppress(grpc.RpcError):  # not listening yet
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.5)
    raise StreamrecError(
        f"the ranking service did not become healthy in {timeout:.0f}s; log: {log_file}"
    )
