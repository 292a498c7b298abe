"""The compiled query tower (export layout v4): shipped for every encoder, equal to the
signature on serving's own inputs, and never used when it is missing, unreadable or wrong."""

import shutil

import numpy as np
import pytest

from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.contracts.query_inputs import UNKNOWN_GAP, history_gaps, padded
from streamrec.infra.core.config import TrainingConfig, load_config
from streamrec.infra.storage import open_model_registry
from streamrec.infra.storage.ports.online_store import HistoryEntry
from streamrec.serving.compiled_tower import TOLERANCE
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.training.export import export_catalog, export_model
from streamrec.training.two_tower import build_two_tower

ITEMS = [f"i{n}" for n in range(40)]
LENGTH = 6
NOW = 1_700_000_000_000


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One exported version per encoder, made on first use."""
    made: dict[str, ModelVersion] = {}

    def version(encoder: str) -> ModelVersion:
        if encoder not in made:
            made[encoder] = _export(tmp_path_factory.mktemp(encoder), encoder)
        return made[encoder]

    return version


def _export(model_dir, encoder: str) -> ModelVersion:
    params = TrainingConfig(query_encoder=encoder, embedding_dim=16)
    model = build_two_tower(ITEMS, np.zeros(len(ITEMS) + 3, np.float32), LENGTH, params)
    model.build_variables()
    metadata = {"history_length": LENGTH}
    embeddings = model.item_embeddings()
    return export_model(
        _registry(model_dir), model.query_tower, LENGTH, ITEMS, embeddings, metadata
    )


def _registry(model_dir):
    return open_model_registry(
        load_config(environ={"STREAMREC_TRAINING_MODEL_DIR": str(model_dir)})
    )


def _copy(version: ModelVersion, tmp_path) -> ModelVersion:
    shutil.copytree(version.root, tmp_path / "1")
    return ModelVersion(tmp_path / "1")


def _requests(seed: int = 0):
    rng = np.random.default_rng(seed)
    for count in range(0, LENGTH + 3):
        history = [
            HistoryEntry(
                timestamp=NOW - int(rng.integers(0, 10**9)) if n % 5 else -1,
                event_id=f"e{n}",
                item_id=str(rng.choice(ITEMS)) if n % 4 else "never-seen",
                event_type=str(rng.choice(["view", "click", "purchase", "odd", ""])),
            )
            for n in range(count)
        ]
        yield history, tuple(sorted(f"k{n}=v{rng.integers(3)}" for n in range(count % 4)))


@pytest.mark.parametrize("encoder", ["transformer", "gru", "mean"])
def test_every_encoder_serves_compiled_and_answers_as_the_signature(exported, encoder):
    version = exported(encoder)
    described = version.metadata()["compiled_query"]
    assert version.compiled_query_file.is_file()
    assert described["query_items"] == len(ITEMS) and described["max_abs_diff"] <= TOLERANCE
    model = RetrievalModel(version)
    assert model.query_path == "compiled"
    for history, context in _requests():
        fast = model.query_embedding("u", history, NOW, context)
        exact = model._signature_query("u", history, NOW, context)
        assert fast.shape == exact.shape
        np.testing.assert_allclose(fast, exact, atol=TOLERANCE)


def test_a_compiled_tower_that_disagrees_or_cannot_load_is_not_used(exported, tmp_path):
    version = _copy(exported("transformer"), tmp_path)
    other = exported("mean")  # another model's compiled tower: the wrong answers
    shutil.copy(other.compiled_query_file, version.compiled_query_file)
    model = RetrievalModel(version)
    assert model.query_path.startswith("signature (compiled tower differs by")
    history, context = list(_requests())[4]
    np.testing.assert_array_equal(
        model.query_embedding("u", history, NOW, context),
        model._signature_query("u", history, NOW, context),
    )
    version.compiled_query_file.write_bytes(b"not a model")
    assert "cannot load the compiled tower" in RetrievalModel(version).query_path
    version.compiled_query_file.unlink()
    assert RetrievalModel(version).query_path == "signature (the version has no compiled tower)"


def test_a_grown_catalog_keeps_the_towers_items_first(exported, tmp_path):
    version = _copy(exported("mean"), tmp_path / "models")
    embeddings = np.ones((len(ITEMS) + 1, 16), np.float32)
    registry = _registry(tmp_path / "models")
    grown = export_catalog(registry, version, [*ITEMS, "new"], embeddings, None, {"type": "exact"})
    assert RetrievalModel(grown).query_path == "compiled"
    with pytest.raises(ValueError, match="must start with the 40 items the query tower knows"):
        export_catalog(registry, version, ["new", *ITEMS], embeddings, None, {"type": "exact"})


def test_history_gaps_run_to_the_next_event_and_the_newest_to_the_request():
    assert history_gaps([90, 70, -1, 10], 100) == [10, 20, UNKNOWN_GAP, UNKNOWN_GAP]
    assert history_gaps([], 100) == []
    assert padded([5, 6, 7], 2, 0).tolist() == [[5, 6]]
    assert padded([5], 3, -1).tolist() == [[5, -1, -1]]
