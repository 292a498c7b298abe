"""Readers refuse contract versions they do not know, in one line naming both versions."""

import json

import pytest

from streamrec.infra.cli.main import main
from streamrec.infra.contracts.export_layout import EXPORT_FORMAT_VERSION, ModelVersion
from streamrec.infra.contracts.feature_spec import (
    FEATURE_SPEC_VERSION,
    MANIFEST_VERSION,
    BatchManifest,
    ExampleFile,
)
from streamrec.infra.core.errors import StreamrecError, UnknownContractVersion

FILE = ExampleFile("date=2026-01-05/batch-00000001-part-00000.tfrecord", "2026-01-05", 3, 1, 2)


def _manifest_json(**changes):
    record = json.loads(BatchManifest(batch_id=1, files=(FILE,)).to_json())
    return json.dumps({**record, **changes})


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_manifest_round_trips_and_derives_its_example_count():
    manifest = BatchManifest(batch_id=1, files=(FILE,), source={"0": [0, 2]}, committed_at_ms=9)
    again = BatchManifest.from_json(manifest.to_json(), origin="m")
    assert again == manifest and again.examples == 3


def test_an_unknown_manifest_version_names_both_versions():
    with pytest.raises(UnknownContractVersion) as exc:
        BatchManifest.from_json(_manifest_json(manifest_version=MANIFEST_VERSION + 1), "b.json")
    assert _one_line(exc) == (
        f"manifest version of b.json is {MANIFEST_VERSION + 1}, but this streamrec reads "
        f"version {MANIFEST_VERSION}; upgrade streamrec, or rebuild the examples with this version"
    )


def test_examples_of_an_unknown_feature_spec_name_both_versions():
    with pytest.raises(UnknownContractVersion) as exc:
        BatchManifest.from_json(_manifest_json(feature_spec_version=7), "b.json")
    expected = "feature spec version of b.json is 7, but this streamrec reads version "
    expected += str(FEATURE_SPEC_VERSION)
    assert expected in _one_line(exc)


def test_examples_of_feature_spec_1_are_read_as_the_events_layout():
    record = json.loads(_manifest_json(feature_spec_version=1))
    for entry in record["files"]:
        entry.pop("layout", None)
    (file,) = BatchManifest.from_json(json.dumps(record), "old.json").files
    assert file.layout == "events" and file == FILE


def test_a_manifest_without_a_version_field_is_the_first_layout():
    record = json.loads(_manifest_json())
    del record["manifest_version"]
    assert BatchManifest.from_json(json.dumps(record), "old.json").files == (FILE,)


def test_a_damaged_manifest_is_a_clear_error():
    with pytest.raises(StreamrecError, match=r"b\.json is not a valid examples manifest"):
        BatchManifest.from_json('{"manifest_version": 1, "feature_spec_version": 1}', "b.json")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("export_format_version", EXPORT_FORMAT_VERSION + 1, "export format version of"),
        ("feature_spec_version", FEATURE_SPEC_VERSION + 1, "feature spec version of"),
    ],
)
def test_an_export_of_an_unknown_version_is_refused(tmp_path, field, value, message):
    version = ModelVersion(tmp_path / "3")
    version.root.mkdir()
    metadata = {"export_format_version": EXPORT_FORMAT_VERSION, "history_length": 5, field: value}
    version.metadata_file.write_text(json.dumps(metadata))
    with pytest.raises(UnknownContractVersion) as exc:
        version.metadata()
    assert f"{message} {version.root} is {value}, but this streamrec reads version" in _one_line(
        exc
    )


@pytest.mark.parametrize("older", [1, 2])
def test_exports_and_examples_of_older_versions_stay_readable(tmp_path, older):
    version = ModelVersion(tmp_path / "3")
    version.root.mkdir()
    metadata = {"export_format_version": older, "feature_spec_version": older, "history_length": 5}
    version.metadata_file.write_text(json.dumps(metadata))
    assert version.metadata()["history_length"] == 5


def test_train_stops_on_examples_of_a_newer_manifest(isolated_env, capsys, monkeypatch):
    manifests = isolated_env / "examples" / "_manifests"
    manifests.mkdir(parents=True)
    (manifests / "batch-00000001.json").write_text(_manifest_json(manifest_version=99))
    monkeypatch.setenv("STREAMREC_OFFLINE_EXAMPLES_PATH", str(isolated_env / "examples"))
    assert main(["train"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "manifest version of" in err and "is 99, but this streamrec reads version 2" in err
