"""One distribution, one import package: the folders install as `streamrec.*` and nothing else."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("ingest", "features", "training", "serving", "infra")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a copy of the source tree (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    build = ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out)]
    subprocess.run(
        [sys.executable, "-m", "pip", *build, str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("streamrec-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_only_the_streamrec_package(wheel):
    top_level = {name.split("/")[0] for name in wheel.namelist()}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"streamrec"}


def test_the_wheel_holds_every_module_and_contract_of_the_source_tree(wheel):
    names = set(wheel.namelist())
    expected = {
        f"streamrec/{path.relative_to(ROOT).as_posix()}"
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".proto", ".properties"} and "__pycache__" not in path.parts
    }
    assert expected - names == set()


def test_the_installed_wheel_imports_without_the_checkout(wheel, tmp_path):
    wheel.extractall(tmp_path / "site")  # what installing the wheel puts in site-packages
    probe = (
        "import streamrec.infra.core.config, streamrec.infra.contracts.feature_spec as spec;"
        "print(spec.__file__)"
    )
    # -S: no site-packages, so neither the editable install nor the checkout can answer.
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(tmp_path / "site" / "streamrec" / "infra"))


def test_the_command_line_entry_point_is_in_the_package(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "streamrec = streamrec.infra.cli.main:main" in wheel.read(entry_points).decode()


@pytest.mark.parametrize(
    ("statement", "works"),
    [("import streamrec.features.examples", True)]
    + [(f"import {folder}", False) for folder in FOLDERS],
)
def test_only_streamrec_is_importable_from_the_environment(tmp_path, statement, works):
    result = subprocess.run(
        [sys.executable, "-c", statement], cwd=tmp_path, capture_output=True, text=True
    )
    assert (result.returncode == 0) == works, result.stderr
