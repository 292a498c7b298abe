"""The file registry's ``current`` pointer: verified promotions, rollbacks as a stack."""

import json

import pytest

from streamrec.infra.contracts.export_layout import (
    EXPORT_FORMAT_VERSION,
    ModelVersion,
    write_checksums,
)
from streamrec.infra.contracts.feature_spec import FEATURE_SPEC_VERSION
from streamrec.infra.core.config import load_config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage.adapters.file_model_registry import FileModelRegistry


@pytest.fixture
def registry(tmp_path):
    config = load_config(environ={"STREAMREC_STACK_STATE_DIR": str(tmp_path / "state")})
    for number in (1, 2, 3):
        _export(config.model_dir / str(number), number)
    return FileModelRegistry(config)


def _export(root, number):
    version = ModelVersion(root)
    version.item_ids_file.parent.mkdir(parents=True)
    version.item_ids_file.write_text("a\nb\n")
    version.metadata_file.write_text(
        json.dumps(
            {
                "version": number,
                "export_format_version": EXPORT_FORMAT_VERSION,
                "feature_spec_version": FEATURE_SPEC_VERSION,
            }
        )
    )
    write_checksums(root)


def test_nothing_serves_before_the_first_promotion(registry):
    assert registry.current() is None
    assert [v.version for v in registry.versions()] == [1, 2, 3]


def test_promotion_moves_the_pointer_and_keeps_the_history(registry):
    registry.promote(1, "first")
    registry.promote(3, "better")
    assert registry.current().version == 3
    assert [(p.version, p.reason) for p in registry.promotions()] == [(1, "first"), (3, "better")]


def test_rollbacks_undo_promotions_in_turn(registry):
    for number in (1, 2, 3):
        registry.promote(number, "ok")
    assert registry.rollback().version == 2
    assert registry.rollback().version == 1
    assert registry.current().version == 1
    with pytest.raises(StreamrecError, match="nothing to roll back to"):
        registry.rollback()


def test_a_corrupt_version_never_becomes_current(registry):
    registry.promote(1, "ok")
    registry.versions()[1].item_ids_file.write_text("a\nz\n")
    with pytest.raises(StreamrecError, match=r"2 is corrupt: item_index/item_ids.txt was changed"):
        registry.promote(2, "bad")
    (registry.versions()[2].item_ids_file).unlink()
    with pytest.raises(StreamrecError, match=r"3 is incomplete: item_index/item_ids\.txt"):
        registry.promote(3, "partial")
    assert registry.current().version == 1


def test_a_version_without_checksums_is_refused(registry):
    (registry.versions()[0].root / "checksums.json").unlink()
    with pytest.raises(StreamrecError, match=r"no readable checksums\.json"):
        registry.promote(1, "ok")


def test_an_unknown_version_is_named(registry):
    with pytest.raises(StreamrecError, match=r"no model version 9 .*versions: 1, 2, 3"):
        registry.version(9)


def test_a_torn_pointer_is_reported_not_guessed(registry):
    (registry.root / "current").write_text('{"promotions": [{"vers')
    with pytest.raises(StreamrecError, match=r"registry pointer .* is unreadable"):
        registry.current()
