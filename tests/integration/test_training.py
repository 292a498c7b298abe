import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from streamrec.infra.contracts.export_layout import (
    HISTORY_INPUT,
    QUERY_OUTPUT,
    SIGNATURE_NAME,
    USER_ID_INPUT,
    versions,
)
from streamrec.infra.errors import StreamrecError
from streamrec.training.trainer import train


def test_export_follows_the_layout(trained):
    config, _, version = trained
    assert version.version == 1
    assert (version.root / "saved_model.pb").is_file()
    item_ids = version.item_ids_file.read_text().splitlines()
    embeddings = np.load(version.item_embeddings_file)
    assert embeddings.shape == (len(item_ids), config.training.embedding_dim)
    assert embeddings.dtype == np.float32
    assert len(set(item_ids)) == len(item_ids) == 120
    assert not list(version.root.parent.glob(".staging-*"))


def test_metadata_records_data_range_parameters_and_metrics(trained):
    config, events, version = trained
    metadata = json.loads(version.metadata_file.read_text())
    assert metadata["version"] == 1
    assert metadata["history_length"] == config.features.history_length
    assert metadata["data"]["examples"] == len(events)
    assert metadata["data"]["min_timestamp"] == events[0].timestamp
    assert metadata["data"]["max_timestamp"] == events[-1].timestamp
    assert metadata["parameters"]["epochs"] == config.training.epochs
    metrics = metadata["metrics"]
    assert metrics["validation_examples"] > 0
    # The planted structure is learnable: the model must beat most-popular on later events.
    assert metrics["validation_recall_at_10"] > 1.5 * metrics["validation_popularity_recall_at_10"]


def test_serving_signature_accepts_unknown_ids(trained):
    config, _, version = trained
    signature = tf.saved_model.load(str(version.saved_model_dir)).signatures[SIGNATURE_NAME]
    history = [["i-000001", "never-seen-item", "", "", ""], ["", "", "", "", ""]]
    out = signature(
        **{
            USER_ID_INPUT: tf.constant(["u-000001", "brand-new-user"]),
            HISTORY_INPUT: tf.constant(history),
        }
    )
    embeddings = out[QUERY_OUTPUT].numpy()
    assert embeddings.shape == (2, config.training.embedding_dim)
    assert np.isfinite(embeddings).all()


def test_each_training_run_exports_the_next_version(trained):
    config, _, _ = trained
    again = train(config, dataclasses.replace(config.training, epochs=1))
    assert again.version == 2
    assert [v.version for v in versions(config.model_dir)] == [1, 2]


def test_an_empty_date_window_is_refused(trained):
    config, _, _ = trained
    with pytest.raises(
        StreamrecError, match=r"no committed training examples .* between 2030-01-01"
    ):
        train(config, config.training, start_date="2030-01-01")
