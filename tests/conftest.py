"""Shared fixtures. Integration fixtures start real services on free local ports."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest

from streamrec.infra.core.config import Config, load_config
from streamrec.infra.devstack.free_port import free_port
from streamrec.infra.devstack.stage_process import cli_command, cli_environment

# What every entry point sets before TensorFlow's first import (TFRS needs tf-keras), set here
# without importing it: only the test modules and fixtures that need TensorFlow import it.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


ROOT = Path(__file__).resolve().parents[1]
_buckets = itertools.count()
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
    for name in list(os.environ):
        if name.startswith("STREAMREC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMREC_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("STREAMREC_STACK_KAFKA_PORT", str(free_port()))
    monkeypatch.setenv("STREAMREC_STACK_REDIS_PORT", str(free_port()))
    monkeypatch.setenv("STREAMREC_SERVING_PORT", str(free_port()))
    return tmp_path


class Cli:
    """``streamrec`` run as an operator runs it: a subprocess whose config file is the whole
    truth (none of the developer's STREAMREC_* settings), stdout and stderr captured."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files = itertools.count()

    def env(self, config, **extra: str) -> dict[str, str]:
        """The environment of a ``streamrec`` process with ``config``, plus ``extra``."""
        from streamrec.infra.core.config import render_toml

        path = self.folder / f"streamrec-{next(self._files)}.toml"
        path.write_text(render_toml(config))
        return cli_environment(path) | extra

    def run(self, config, *argv: str, timeout: float = 600, env=None, **extra: str):
        """Runs to the end; ``env`` replaces the environment built from ``config``."""
        return subprocess.run(
            cli_command(argv),
            env=env if env is not None else self.env(config, **extra),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, config, *argv: str, env=None, **popen) -> subprocess.Popen:
        """Starts in its own process group, output merged into one text pipe by default."""
        options = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True} | popen
        return subprocess.Popen(
            cli_command(argv),
            env=env if env is not None else self.env(config),
            start_new_session=True,
            **options,
        )


@pytest.fixture
def run_cli(tmp_path) -> Cli:
    """Runs the ``streamrec`` command in a subprocess; see :class:`Cli`."""
    return Cli(tmp_path)


def pytest_collection_modifyitems(items):
    for item in items:
        parts = item.path.parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.slow)


# The session's services, shared by the integration and cluster tests.


@pytest.fixture(scope="session")
def stack_config(tmp_path_factory) -> Config:
    state = tmp_path_factory.mktemp("stack")
    return load_config(
        environ={
            "STREAMREC_STACK_STATE_DIR": str(state),
            "STREAMREC_STACK_KAFKA_PORT": str(free_port()),
            "STREAMREC_STACK_REDIS_PORT": str(free_port()),
            "STREAMREC_SERVING_METRICS_PORT": "0",  # a test that scrapes them picks a port
        }
    )


@pytest.fixture(scope="session")
def stack(stack_config) -> Config:
    """The embedded stack, up for the whole session; it must leave no process behind."""
    from streamrec.infra.devstack.stack import LocalStack

    local = LocalStack(stack_config)
    local.up()
    yield stack_config
    local.down()
    assert all(s.pid is None and not s.answering for s in local.status())


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """An S3-compatible server for the session, its endpoint and credentials in this process's
    environment (as a pod's would be), so every client here reaches it."""
    from tests.engines.s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3")).up()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.environment().items():
            patch.setenv(name, value)
        yield server
    server.down()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A new, empty bucket for one test: its URL."""
    return s3_server.bucket(f"streamrec-{next(_buckets)}")
