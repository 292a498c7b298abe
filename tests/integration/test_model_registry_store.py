"""The model registry on an S3-compatible server: versions published without a rename, the
pointer as a create-only log, and each process's verified local copies."""

import json
import threading

import pytest

from streamrec.infra.contracts.export_layout import EXPORT_FORMAT_VERSION, ModelVersion
from streamrec.infra.contracts.feature_spec import FEATURE_SPEC_VERSION
from streamrec.infra.core.config import load_config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_model_registry

METADATA = {"export_format_version": EXPORT_FORMAT_VERSION,
            "feature_spec_version": FEATURE_SPEC_VERSION}  # fmt: skip


def _registry(bucket, tmp_path, process="a"):
    """One process's registry: the shared bucket, its own cache directory."""
    return open_model_registry(
        load_config(
            environ={
                "STREAMREC_TRAINING_MODEL_DIR": f"{bucket}/models",
                "STREAMREC_MODEL_REGISTRY_CACHE_DIR": str(tmp_path / process),
            }
        )
    )


def _publish(registry, items="a\nb\n"):
    staging = registry.staging_dir()
    version = ModelVersion(staging)
    version.item_ids_file.parent.mkdir(parents=True)
    version.item_ids_file.write_text(items)
    return registry.publish(staging, METADATA)


def test_a_version_is_visible_to_another_process_once_published_and_is_copied_verified(
    s3_bucket, tmp_path
):
    trainer, server = _registry(s3_bucket, tmp_path, "trainer"), _registry(s3_bucket, tmp_path)
    assert server.versions() == [] and server.current() is None
    published = _publish(trainer, items="x\ny\n")
    assert published.version == 1 and published.root == tmp_path / "trainer" / "1"
    trainer.promote(1, "first")
    served = server.current()
    assert served.root == tmp_path / "a" / "1"  # its own copy, complete
    assert served.item_ids_file.read_text() == "x\ny\n"
    assert served.metadata()["version"] == 1
    assert [p.reason for p in server.promotions()] == ["first"]


def test_concurrent_publishers_get_distinct_versions(s3_bucket, tmp_path):
    registries = [_registry(s3_bucket, tmp_path, f"p{n}") for n in range(4)]
    made = []
    threads = [
        threading.Thread(target=lambda r=r: made.append(_publish(r).version)) for r in registries
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == [1, 2, 3, 4]
    assert [v.version for v in _registry(s3_bucket, tmp_path, "reader").versions()] == [1, 2, 3, 4]


def test_a_claimed_version_whose_upload_died_is_invisible_and_skipped(s3_bucket, tmp_path):
    registry = _registry(s3_bucket, tmp_path)
    _publish(registry)
    registry.store.publish("2/.claim", b"{}", create_only=True)  # a trainer killed here
    registry.store.publish("2/metadata.json", json.dumps(METADATA).encode())
    assert [v.version for v in registry.versions()] == [1]
    with pytest.raises(StreamrecError, match=r"no model version 2 in s3://.*versions: 1\)"):
        registry.promote(2, "half")
    assert _publish(registry).version == 3


def test_a_version_changed_on_the_store_is_refused_by_a_process_that_copies_it(s3_bucket, tmp_path):
    trainer = _registry(s3_bucket, tmp_path, "trainer")
    _publish(trainer)
    trainer.promote(1, "ok")
    _publish(trainer)
    trainer.store.publish("2/item_index/item_ids.txt", b"a\nz\n")
    server = _registry(s3_bucket, tmp_path, "server")
    with pytest.raises(StreamrecError, match=r"is corrupt: item_index/item_ids.txt was changed"):
        server.promote(2, "bad")
    assert server.current().version == 1 and not (tmp_path / "server" / "2").exists()


def test_concurrent_pointer_moves_are_all_kept_in_order(s3_bucket, tmp_path):
    for _ in range(3):
        _publish(_registry(s3_bucket, tmp_path, "trainer"))
    registries = [_registry(s3_bucket, tmp_path, f"op{n}") for n in range(3)]
    threads = [
        threading.Thread(target=lambda r=r, n=n: r.promote(n + 1, f"by {n}"))
        for n, r in enumerate(registries)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = _registry(s3_bucket, tmp_path, "reader")
    promotions = reader.promotions()
    assert sorted(p.reason for p in promotions) == ["by 0", "by 1", "by 2"]
    assert reader.current().version == promotions[-1].version
    rolled = reader.rollback()
    assert rolled.version == promotions[-2].version
    assert registries[0].current().version == rolled.version  # a reader that read before


def test_a_torn_promotion_record_is_reported_not_guessed(s3_bucket, tmp_path):
    registry = _registry(s3_bucket, tmp_path)
    registry.store.publish("promotions/00000000.json", b'{"vers')
    with pytest.raises(StreamrecError, match=r"registry pointer s3://.*00000000.json is unread"):
        registry.current()
