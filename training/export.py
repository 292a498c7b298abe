"""Writes a trained model as a new version in the export layout (:mod:`training.export_layout`)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import tensorflow as tf

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.ann_index import write_ann_index
from streamrec.infra.contracts.export_layout import (
    EXPORT_FORMAT_VERSION,
    HISTORY_EVENT_TYPES_INPUT,
    HISTORY_INPUT,
    HISTORY_TIMES_INPUT,
    QUERY_OUTPUT,
    REQUEST_CONTEXT_INPUT,
    REQUEST_TIME_INPUT,
    SIGNATURE_NAME,
    USER_ID_INPUT,
    ModelVersion,
)
from streamrec.infra.contracts.item_neighbours import ItemNeighbours
from streamrec.infra.storage.ports.model_registry import ModelRegistry
from streamrec.training.compiled_query import compile_query_tower


class QueryServing(tf.Module):
    """The query tower behind a fixed serving signature, as TF Serving and streamrec call it."""

    def __init__(self, tower: tf.keras.Model, history_length: int) -> None:
        super().__init__()
        self.tower = tower
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None], tf.string, name=USER_ID_INPUT),
                tf.TensorSpec([None, history_length], tf.string, name=HISTORY_INPUT),
                tf.TensorSpec([None, history_length], tf.int64, name=HISTORY_TIMES_INPUT),
                tf.TensorSpec([None, history_length], tf.string, name=HISTORY_EVENT_TYPES_INPUT),
                tf.TensorSpec([None], tf.int64, name=REQUEST_TIME_INPUT),
                tf.TensorSpec([None, None], tf.string, name=REQUEST_CONTEXT_INPUT),
            ],
        )

    def _serve(
        self,
        user_id: tf.Tensor,
        history: tf.Tensor,
        history_times: tf.Tensor,
        history_event_types: tf.Tensor,
        request_time: tf.Tensor,
        request_context: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        features = {
            spec.USER_ID: user_id,
            spec.HISTORY: history,
            HISTORY_TIMES_INPUT: history_times,
            HISTORY_EVENT_TYPES_INPUT: history_event_types,
            REQUEST_TIME_INPUT: request_time,
            REQUEST_CONTEXT_INPUT: request_context,
        }
        return {QUERY_OUTPUT: self.tower(features)}


def export_model(
    registry: ModelRegistry,
    query_tower: tf.keras.Model,
    history_length: int,
    item_ids: Sequence[str],
    item_embeddings: np.ndarray,
    metadata: dict,
    logs: Path | None = None,
    ann_index: faiss.Index | None = None,
    item_neighbours: ItemNeighbours | None = None,
) -> ModelVersion:
    """Writes everything into a staging directory, then publishes it as the next version."""
    staging = registry.staging_dir()
    try:
        serving = QueryServing(query_tower, history_length)
        tf.saved_model.save(serving, str(staging), signatures={SIGNATURE_NAME: serving.serve})
        probe = ModelVersion(staging)
        compiled, described = compile_query_tower(query_tower, history_length)
        metadata = {**metadata, "compiled_query": {**described, "query_items": len(item_ids)}}
        if compiled is not None:
            probe.compiled_query_file.write_bytes(compiled)
        probe.item_ids_file.parent.mkdir(parents=True)
        probe.item_ids_file.write_text("".join(f"{item}\n" for item in item_ids))
        np.save(probe.item_embeddings_file, np.asarray(item_embeddings, dtype=np.float32))
        if ann_index is not None:
            write_ann_index(ann_index, probe.ann_index_file)
        if item_neighbours is not None:
            item_neighbours.save(probe.item_neighbours_file)
        query_tower.save_weights(str(probe.weights_prefix))
        if logs is not None and logs.is_dir():
            shutil.copytree(logs, staging / "logs")
        return registry.publish(
            staging, {"export_format_version": EXPORT_FORMAT_VERSION, **metadata}
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_catalog(
    registry: ModelRegistry,
    base: ModelVersion,
    item_ids: Sequence[str],
    item_embeddings: np.ndarray,
    ann_index: faiss.Index | None,
    item_index: dict,
    metadata_updates: dict | None = None,
) -> ModelVersion:
    """A new version serving ``base``'s query tower over another candidate catalog (for
    example items embedded since, or the large catalogs of ``streamrec bench serve``). The
    catalog starts with the items the tower knows, in its order. ``metadata_updates`` replace
    entries of the base's metadata."""
    known = base.metadata().get("compiled_query", {}).get("query_items", 0)
    if list(item_ids[:known]) != base.item_ids_file.read_text().splitlines()[:known]:
        raise ValueError(f"the catalog must start with the {known} items the query tower knows")
    staging = registry.staging_dir()
    try:
        shutil.copytree(base.root, staging)
        probe = ModelVersion(staging)
        probe.item_ids_file.write_text("".join(f"{item}\n" for item in item_ids))
        np.save(probe.item_embeddings_file, np.asarray(item_embeddings, dtype=np.float32))
        probe.ann_index_file.unlink(missing_ok=True)
        if ann_index is not None:
            write_ann_index(ann_index, probe.ann_index_file)
        metadata = (
            base.metadata()
            | {
                "items": len(item_ids),
                "item_index": item_index,
                "parent_version": base.version,
            }
            | (metadata_updates or {})
        )
        return registry.publish(staging, metadata)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
