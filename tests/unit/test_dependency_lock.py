"""uv.lock pins what pyproject.toml asks for, and the tests run on exactly those pins.

pyproject.toml keeps ranges, because the wheel is installed into other people's environments;
uv.lock pins one release of everything inside those ranges, with hashes, and `make test` and
`make demo` install only from it (README, "Dependencies"). The lock records the requirements it
was resolved from, so a dependency added to, dropped from or re-ranged in one file and not the
other is caught here without a network, before an install reaches it.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())


def declared(pyproject: dict) -> set[tuple]:
    """pyproject.toml's requirements as uv records them: an extra's carry `extra == 'NAME'`."""
    project = pyproject["project"]
    lines = [(line, None) for line in project["dependencies"]]
    for extra, extra_lines in project.get("optional-dependencies", {}).items():
        lines += [(line, extra) for line in extra_lines]
    found = set()
    for line, extra in lines:
        requirement = Requirement(line)
        marker = str(requirement.marker) if requirement.marker else None
        if extra is not None:
            marker = f"extra == '{extra}'" + (f" and ({marker})" if marker else "")
        found.add(_key(requirement.name, requirement.extras, str(requirement.specifier), marker))
    return found


def locked_from(lock: dict) -> set[tuple]:
    """The requirements the lock was resolved from: its own project's `requires-dist`."""
    (project,) = (p for p in lock["package"] if p["name"] == "streamrec")
    return {
        _key(r["name"], r.get("extras", ()), r.get("specifier", ""), r.get("marker"))
        for r in project["metadata"]["requires-dist"]
    }


def _key(name: str, extras, specifier: str, marker: str | None) -> tuple:
    specs = frozenset(str(s) for s in SpecifierSet(specifier))
    return canonicalize_name(name), frozenset(extras), specs, marker


def lock_drift(pyproject: dict, lock: dict) -> list[str]:
    """What one file asks for and the other does not: empty when the lock is current."""
    ours, theirs = declared(pyproject), locked_from(lock)
    return [f"pyproject.toml only: {_show(k)}" for k in sorted(ours - theirs, key=str)] + [
        f"uv.lock only: {_show(k)}" for k in sorted(theirs - ours, key=str)
    ]


def _show(key: tuple) -> str:
    name, extras, specs, marker = key
    extra = f"[{','.join(sorted(extras))}]" if extras else ""
    return f"{name}{extra}{','.join(sorted(specs))}" + (f"; {marker}" if marker else "")


def locked_versions(lock: dict) -> dict[str, set[Version]]:
    """Every package the lock pins, with its versions (one per Python where the pins split)."""
    versions: dict[str, set[Version]] = {}
    for package in lock["package"]:
        if package["name"] != "streamrec":
            versions.setdefault(package["name"], set()).add(Version(package["version"]))
    return versions


def test_the_lock_was_resolved_from_the_requirements_in_pyproject():
    assert lock_drift(PYPROJECT, LOCK) == [], "uv.lock is stale: run `make lock`"


@pytest.mark.parametrize(
    ("change", "drift"),
    [
        (lambda p: p["dependencies"].append("rich>=13"), ["pyproject.toml only: rich>=13"]),
        (
            lambda p: p["dependencies"].remove("tqdm>=4.66"),
            ["uv.lock only: tqdm>=4.66"],
        ),
        (
            lambda p: p["optional-dependencies"]["dev"].append("hypothesis>=6"),
            ["pyproject.toml only: hypothesis>=6; extra == 'dev'"],
        ),
    ],
    ids=["added", "dropped", "added-to-dev"],
)
def test_a_requirement_in_one_file_and_not_the_other_is_named(change, drift):
    edited = tomllib.loads((ROOT / "pyproject.toml").read_text())
    change(edited["project"])
    assert lock_drift(edited, LOCK) == drift


def test_a_changed_range_is_named_from_both_sides():
    edited = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = edited["project"]["dependencies"]
    deps[deps.index("tqdm>=4.66")] = "tqdm>=4.67"
    assert lock_drift(edited, LOCK) == [
        "pyproject.toml only: tqdm>=4.67",
        "uv.lock only: tqdm>=4.66",
    ]


def test_every_direct_requirement_is_pinned_inside_its_range():
    pins = locked_versions(LOCK)
    for name, _, specs, _ in declared(PYPROJECT):
        assert name in pins, f"{name} is not in uv.lock: run `make lock`"
        outside = [str(v) for v in pins[name] if not SpecifierSet(",".join(specs)).contains(v)]
        assert not outside, f"uv.lock pins {name} {outside}, outside {','.join(sorted(specs))}"


def test_the_tests_run_on_the_locked_releases():
    # What the tests prove holds for the lock only if they run on it: in particular the
    # generated-code test regenerates with the installed grpcio-tools, which must be the pinned.
    pins = locked_versions(LOCK)
    wrong = []
    for distribution in metadata.distributions():
        name = canonicalize_name(distribution.metadata["Name"])
        if name in pins and Version(distribution.version) not in pins[name]:
            wrong.append(f"{name} {distribution.version} (locked: {sorted(map(str, pins[name]))})")
    assert not wrong, f"not the locked releases, run `make test` to sync .venv: {wrong}"
    assert metadata.version("grpcio-tools") in {str(v) for v in pins["grpcio-tools"]}


def _lower_bound(requirement_name: str) -> Version:
    for line in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == requirement_name:
            floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
            return max(floors)
    raise AssertionError(f"{requirement_name} is not a dependency in pyproject.toml")


def test_the_committed_grpc_modules_accept_every_grpcio_that_pyproject_allows():
    # A *_pb2_grpc.py module refuses to import under a grpcio older than its generator.
    for module in sorted((ROOT / "infra" / "contracts").glob("*_pb2_grpc.py")):
        (generated,) = re.findall(r"GRPC_GENERATED_VERSION = '([^']+)'", module.read_text())
        assert _lower_bound("grpcio") >= Version(generated), f"{module.name}: grpcio>={generated}"


def test_the_committed_protobuf_modules_accept_every_protobuf_that_pyproject_allows():
    # A *_pb2.py module checks that the protobuf runtime is at least its generator's release.
    pattern = r"ValidateProtobufRuntimeVersion\(\s*\S+PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),"
    for module in sorted([*ROOT.glob("infra/contracts/*_pb2.py"), *ROOT.glob("features/*_pb2.py")]):
        (parts,) = re.findall(pattern, module.read_text())
        generated = Version(".".join(parts))
        assert _lower_bound("protobuf") >= generated, f"{module.name}: protobuf>={generated}"


def test_the_installer_is_the_release_the_lock_was_made_with():
    (pinned,) = re.findall(r"^uv==(\S+)", (ROOT / "requirements-uv.txt").read_text(), re.M)
    assert PYPROJECT["tool"]["uv"]["required-version"] == f"=={pinned}"
