"""The offline-examples store on a local directory and on an S3-compatible server: the same
commit, replay, abort and backfill rules on both, though only one of them can rename."""

import dataclasses
from pathlib import Path

import pytest

from streamrec.infra import storage as stores
from streamrec.infra.contracts.feature_spec import (
    Backfill,
    BatchManifest,
    ExampleFile,
    backfill_name,
    batch_name,
    data_file_path,
)
from streamrec.infra.core.config import load_config


def _store(root: str, tmp_path: Path):
    config = load_config(
        environ={
            "STREAMREC_OFFLINE_EXAMPLES_PATH": root,
            "STREAMREC_OFFLINE_EXAMPLES_CACHE_DIR": str(tmp_path / "cache"),
        }
    )
    return stores.open_offline_examples(config)


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    """The examples' root: a local directory, or a bucket of the S3 server."""
    if request.param == "local":
        return str(tmp_path / "ex")
    return request.getfixturevalue("s3_bucket") + "/ex"


def _objects(root: str, tmp_path: Path) -> list[str]:
    """The name of every example file under ``root``, staged or committed."""
    store = _store(root, tmp_path).store
    return sorted(Path(name).name for name in store.glob("**/*.tfrecord"))


def _stage(store, batch_id, dates, attempt="attempt1", text=""):
    files, staged = [], {}
    for n, date in enumerate(dates):
        path = data_file_path(date, batch_name(batch_id), n)
        staged[path], handle = store.open_staged(batch_name(batch_id), date, n, attempt)
        with handle:
            handle.write((text or f"{batch_id}/{date}").encode())
        files.append(ExampleFile(path, date, 1, 10, 10))
    return BatchManifest(batch_id=batch_id, files=tuple(files)), staged


def test_files_become_visible_only_when_their_batch_commits(root, tmp_path):
    store = _store(root, tmp_path)
    manifest, staged = _stage(store, 1, ["2026-01-05", "2026-01-06"])
    assert store.files() == [] and store.manifest("batch-00000001") is None
    store.commit(manifest, staged)
    found = store.files()
    assert [Path(f.path).read_bytes() for f in found] == [b"1/2026-01-05", b"1/2026-01-06"]
    assert [f.date for f in store.files(start_date="2026-01-06")] == ["2026-01-06"]
    assert [f.date for f in store.files(end_date="2026-01-05")] == ["2026-01-05"]
    if not store.store.is_local:  # the manifest names the files where they were written
        files = [dataclasses.replace(f, path=f.path.replace(".tf", "-attempt1.tf")) for f in
                 manifest.files]  # fmt: skip
        manifest = dataclasses.replace(manifest, files=tuple(files))
    assert store.manifest("batch-00000001") == manifest and store.manifests() == [manifest]
    assert len(_objects(root, tmp_path)) == 2  # nothing left staged


def test_a_recommitted_batch_replaces_its_files_instead_of_adding(root, tmp_path):
    store = _store(root, tmp_path)
    store.commit(*_stage(store, 4, ["2026-01-05", "2026-01-06"], attempt="first"))
    assert [Path(f.path).read_bytes() for f in store.files()] == [b"4/2026-01-05", b"4/2026-01-06"]
    store.commit(*_stage(store, 4, ["2026-01-06"], attempt="second", text="again"))
    assert [f.date for f in store.files()] == ["2026-01-06"]
    assert [Path(f.path).read_bytes() for f in store.files()] == [b"again"]
    suffix = "" if store.store.is_local else "-second"  # an object store has no rename
    assert _objects(root, tmp_path) == [f"batch-00000004-part-00000{suffix}.tfrecord"]
    cached = {p.name for p in (tmp_path / "cache").rglob("*.tfrecord")}
    assert cached == (set() if store.store.is_local else set(_objects(root, tmp_path)))


def test_an_aborted_batch_leaves_nothing_and_keeps_what_its_name_committed(root, tmp_path):
    store = _store(root, tmp_path)
    _stage(store, 2, ["2026-01-05"])
    store.abort("batch-00000002")
    assert _objects(root, tmp_path) == [] and store.files() == []
    store.commit(*_stage(store, 3, ["2026-01-05"], attempt="first"))
    _stage(store, 3, ["2026-01-05", "2026-01-06"], attempt="second", text="replay")
    store.abort("batch-00000003")  # a replay of a committed batch that failed
    assert [Path(f.path).read_bytes() for f in store.files()] == [b"3/2026-01-05"]
    assert len(_objects(root, tmp_path)) == 1


def _backfill(store, start, end, through_batch, dates, committed_at_ms):
    name = backfill_name(start, end)
    files, staged = [], {}
    for date in dates:
        path = data_file_path(date, name, 0)
        staged[path], handle = store.open_staged(name, date, 0, "attempt1")
        with handle:
            handle.write(f"{name}/{date}".encode())
        files.append(ExampleFile(path, date, 1, 10, 10))
    backfill = Backfill(start, end, through_batch)
    store.commit(BatchManifest(-1, tuple(files), {}, committed_at_ms, backfill), staged)


def test_a_backfill_replaces_the_batches_it_was_rebuilt_from_on_its_dates(root, tmp_path):
    store = _store(root, tmp_path)
    days = ["2026-01-05", "2026-01-06", "2026-01-07"]
    store.commit(*_stage(store, 1, days))
    store.commit(*_stage(store, 2, days[1:]))
    _backfill(store, days[0], days[1], through_batch=1, dates=days[:2], committed_at_ms=5)
    seen = {(f.date, Path(f.path).read_bytes().decode()) for f in store.files()}
    assert seen == {
        (days[0], "backfill-2026-01-05_2026-01-06/2026-01-05"),
        (days[1], "backfill-2026-01-05_2026-01-06/2026-01-06"),
        (days[1], "2/2026-01-06"),  # committed after the backfill's source: kept
        (days[2], "1/2026-01-07"),  # not covered
        (days[2], "2/2026-01-07"),
    }
    _backfill(store, days[1], days[1], through_batch=2, dates=days[1:2], committed_at_ms=9)
    assert {Path(f.path).read_bytes().decode() for f in store.files(days[1], days[1])} == {
        "backfill-2026-01-06_2026-01-06/2026-01-06"  # the later backfill holds the date
    }
