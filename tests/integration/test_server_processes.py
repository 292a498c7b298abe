"""`streamrec serve` as several processes on one port: spread, merged metrics, a process
killed with kill -9 replaced while the others answer, and a graceful stop of them all."""

import dataclasses
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.devstack.stage_process import cli_command
from tests.conftest import free_port

pytestmark = pytest.mark.slow  # server process groups


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not exited (a zombie waiting to be reaped has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listening_sockets(port: int) -> set[str]:
    """Inodes of the sockets listening on the port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def _sockets_of(pid: int) -> set[str]:
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return set()
    return {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}


def _listens(pid: int, port: int) -> bool:
    """Whether the process holds a socket listening on the port."""
    return bool(_sockets_of(pid) & _listening_sockets(port))


def _recommend_on_new_connections(address: str, calls: int) -> list[str]:
    """Each call on its own connection, so the kernel spreads them across the processes."""
    versions = []
    for n in range(calls):
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(address, options=options) as channel:
            stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
            request = recommend_pb2.RecommendRequest(user_id=f"u-{n % 50:06d}", k=3)
            reply = stub.Recommend(request, timeout=20)
            versions.append(reply.model_version)
    return versions


def _requests_counted(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("streamrec_serving_requests_total{") and 'rpc="Recommend"' in line
    )


@pytest.fixture
def two_processes(trained, run_cli):
    config, _, result = trained
    port, metrics_port = free_port(), free_port()
    serving = dataclasses.replace(config.serving, port=port, metrics_port=metrics_port, processes=2)
    supervisor = subprocess.Popen(
        cli_command(["serve"]),
        env=run_cli.env(dataclasses.replace(config, serving=serving)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = supervisor.stdout.readline()
        assert banner.startswith(
            f"serving model version {result.version.version} with 2 processes on"
        )
        yield supervisor, f"127.0.0.1:{port}", metrics_port
    finally:
        for child in _children(supervisor.pid):
            os.kill(child, signal.SIGKILL)
        supervisor.kill()


def test_processes_share_the_port_and_a_killed_one_is_replaced(two_processes):
    supervisor, address, metrics_port = two_processes
    first = _children(supervisor.pid)
    port = int(address.rsplit(":", 1)[1])
    assert len(first) == 2 and all(_listens(pid, port) for pid in first)
    assert _recommend_on_new_connections(address, 40)
    assert _requests_counted(metrics_port) == 40  # both processes' counts, merged

    victim = min(first)
    its_socket = _sockets_of(victim) & _listening_sockets(port)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while its_socket & _listening_sockets(port):  # connections queued on it die with it
        assert time.monotonic() < deadline, "the killed process's socket still listens"
        time.sleep(0.05)
    while time.monotonic() < deadline:
        now = _children(supervisor.pid)
        if len(now) == 2 and victim not in now:
            break
        # Meanwhile the survivor answers every new connection.
        assert len(_recommend_on_new_connections(address, 5)) == 5
        time.sleep(0.5)
    else:
        pytest.fail("the killed API-server process was not replaced within 120 s")
    replaced = _children(supervisor.pid)
    assert len(replaced & first) == 1
    (replacement,) = replaced - first
    while not _listens(replacement, port):
        assert time.monotonic() < deadline, "the replacement never listened on the port"
        time.sleep(0.5)
    assert all(_listens(pid, port) for pid in replaced)
    assert len(_recommend_on_new_connections(address, 20)) == 20

    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 0
    assert "stopped" in supervisor.stdout.read()
    assert not any(_alive(pid) for pid in replaced)


def test_the_processes_stop_when_their_supervisor_is_killed(two_processes):
    supervisor, _, _ = two_processes
    children = _children(supervisor.pid)
    assert len(children) == 2
    supervisor.kill()  # kill -9: it cannot stop them itself
    supervisor.wait()
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in children):
        assert time.monotonic() < deadline, "server processes outlived their supervisor"
        time.sleep(0.5)
