"""Shared fixtures. Integration fixtures start real services on free local ports."""

from __future__ import annotations

import socket

import pytest

from streamrec.infra.cli.runtime import prepare_tensorflow

# Before any test module imports TensorFlow, as every entry point does: TFRS needs tf-keras.
prepare_tensorflow()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No STREAMREC_* from the developer's shell; state and ports private to the test."""
    import os

    for name in list(os.environ):
        if name.startswith("STREAMREC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMREC_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("STREAMREC_STACK_KAFKA_PORT", str(free_port()))
    monkeypatch.setenv("STREAMREC_STACK_REDIS_PORT", str(free_port()))
    monkeypatch.setenv("STREAMREC_SERVING_PORT", str(free_port()))
    return tmp_path


def pytest_collection_modifyitems(items):
    for item in items:
        parts = item.path.parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
