"""An exported model version as the evaluation role scores it: exactly what serving loads."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.export_layout import (
    HISTORY_INPUT,
    QUERY_OUTPUT,
    SIGNATURE_NAME,
    USER_ID_INPUT,
    ModelVersion,
)
from streamrec.infra.errors import StreamrecError
from streamrec.training.evaluate import EmbeddingScorer
from streamrec.training.queries import Catalog

_CHUNK = 1024


def exported_scorer(
    version: ModelVersion, catalog: Catalog, name: str | None = None
) -> EmbeddingScorer:
    """Scores with the version's SavedModel and item embeddings, aligned to ``catalog``."""
    metadata = version.metadata()
    try:
        signature = tf.saved_model.load(str(version.saved_model_dir)).signatures[SIGNATURE_NAME]
        item_ids = version.item_ids_file.read_text().splitlines()
        embeddings = np.load(version.item_embeddings_file)
    except (OSError, ValueError, KeyError) as exc:
        raise StreamrecError(f"cannot load model version {version.root}: {exc}") from None
    length = int(metadata["history_length"])
    rows = {item: row for row, item in enumerate(item_ids)}
    aligned = np.full((len(catalog), embeddings.shape[1]), np.nan, dtype=np.float32)
    known = [(column, rows[item]) for column, item in enumerate(catalog.item_ids) if item in rows]
    if known:
        columns, source = zip(*known, strict=True)
        aligned[list(columns)] = embeddings[list(source)]

    def encode(users: np.ndarray, histories: np.ndarray) -> np.ndarray:
        histories = _fit(histories, length)
        parts = [
            signature(
                **{
                    USER_ID_INPUT: tf.constant(users[i : i + _CHUNK]),
                    HISTORY_INPUT: tf.constant(histories[i : i + _CHUNK]),
                }
            )[QUERY_OUTPUT].numpy()
            for i in range(0, len(users), _CHUNK)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, embeddings.shape[1]), np.float32)

    return EmbeddingScorer(name or f"version {version.version}", encode, aligned)


def _fit(histories: np.ndarray, length: int) -> np.ndarray:
    """Histories cut or padded to the length the version was exported with."""
    if histories.shape[1] >= length:
        return histories[:, :length]
    padding = np.full((len(histories), length - histories.shape[1]), "", dtype=histories.dtype)
    return np.concatenate([histories, padding], axis=1)
