"""Process-wide settings belong to entry points: importing streamrec changes nothing, and
TensorFlow's start-up noise reaches the terminal only with --verbose."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # CLI subprocesses that import TensorFlow

_IMPORT_EVERYTHING = """
import importlib, os, pkgutil
import streamrec.infra
before = dict(os.environ)
packages = ["streamrec.ingest", "streamrec.features", "streamrec.training", "streamrec.serving",
            "streamrec.infra"]
names = list(packages)
for package in packages:
    module = importlib.import_module(package)
    names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(len(names), changed)
"""


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMREC_", "TF_"))}
    return env | {"STREAMREC_STACK_STATE_DIR": str(tmp_path / "state"), **extra}


def test_importing_every_module_changes_no_environment_variable(tmp_path):
    # TF_USE_LEGACY_KERAS is what an entry point sets first; with it, every module imports.
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING],
        env=_env(tmp_path, TF_USE_LEGACY_KERAS="1"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count, changed = result.stdout.strip().split(" ", 1)
    assert int(count) > 40 and changed == "[]"


def _train(tmp_path, *flags):
    return subprocess.run(
        [sys.executable, "-m", "streamrec.infra.cli", *flags, "train"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
    )


def test_tensorflow_start_up_lines_are_hidden_unless_verbose(tmp_path):
    quiet = _train(tmp_path)
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [quiet.stderr.strip()]  # the one error line, nothing else
    assert quiet.stderr.startswith("streamrec: error: no committed training examples")

    verbose = _train(tmp_path, "--verbose")
    assert verbose.returncode == 1
    lines = verbose.stderr.strip().splitlines()
    assert len(lines) > 1 and lines[-1] == quiet.stderr.strip()
