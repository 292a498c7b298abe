import socket
from pathlib import Path

import pytest

from streamrec.infra.devstack import free_port as free_port_module
from streamrec.infra.devstack.free_port import free_port

_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@pytest.mark.skipif(not _RANGE.exists(), reason="the kernel does not say its ephemeral range")
def test_a_free_port_is_one_no_outgoing_connection_can_be_given():
    first_ephemeral = int(_RANGE.read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(10000 <= port < first_ephemeral for port in ports)


def test_a_free_port_can_be_listened_on():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()


def test_a_port_some_socket_holds_is_never_given(monkeypatch):
    with socket.socket() as squatter, socket.socket() as vacated:
        squatter.bind(("127.0.0.1", 0))
        held = squatter.getsockname()[1]
        vacated.bind(("127.0.0.1", 0))
        free = vacated.getsockname()[1]
        vacated.close()
        draws = iter([held, held, free])
        monkeypatch.setattr(free_port_module._random, "randrange", lambda *_: next(draws))
        monkeypatch.setattr(free_port_module, "_first_ephemeral_port", lambda: 60000)
        assert free_port() == free


def test_ports_taken_before_anything_listens_differ():
    assert len({free_port() for _ in range(500)}) == 500
