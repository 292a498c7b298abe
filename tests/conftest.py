"""Shared fixtures. Integration fixtures start real services on free local ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.infra.cli.runtime import prepare_tensorflow
from streamrec.infra.local_stack.free_port import free_port

# Before any test module imports TensorFlow, as every entry point does: TFRS needs tf-keras.
prepare_tensorflow()


ROOT = Path(__file__).resolve().parents[1]
RETAIL_EXCERPT = ROOT / "tests" / "fixtures" / "online-retail-2010-12-excerpt.csv"


def shared_dataset(name: str) -> Path:
    """A file of ../shared/datasets (see its README); the test is skipped where it is absent."""
    for folder in (ROOT.parent / "shared" / "datasets", Path("/work/shared/datasets")):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is not in ../shared/datasets on this machine")


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
