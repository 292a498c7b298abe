"""An exported model version as the evaluation role scores it: exactly what serving loads."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.export_layout import (
    HISTORY_EVENT_TYPES_INPUT,
    HISTORY_INPUT,
    HISTORY_PADDING,
    HISTORY_TIMES_INPUT,
    QUERY_OUTPUT,
    REQUEST_CONTEXT_INPUT,
    REQUEST_TIME_INPUT,
    SIGNATURE_NAME,
    UNKNOWN_TIME,
    USER_ID_INPUT,
    ModelVersion,
)
from streamrec.infra.errors import StreamrecError
from streamrec.training.evaluate import EmbeddingScorer
from streamrec.training.queries import Catalog, Queries
from streamrec.training.request_context import padded_tokens, split_tokens

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
    accepted = set(signature.structured_input_signature[1])  # v1 exports take fewer inputs
    rows = {item: row for row, item in enumerate(item_ids)}
    aligned = np.full((len(catalog), embeddings.shape[1]), np.nan, dtype=np.float32)
    known = [(column, rows[item]) for column, item in enumerate(catalog.item_ids) if item in rows]
    if known:
        columns, source = zip(*known, strict=True)
        aligned[list(columns)] = embeddings[list(source)]

    def encode(queries: Queries) -> np.ndarray:
        parts = []
        for start in range(0, len(queries), _CHUNK):
            inputs = query_inputs(queries.select(slice(start, start + _CHUNK)), length)
            chosen = {name: value for name, value in inputs.items() if name in accepted}
            parts.append(signature(**chosen)[QUERY_OUTPUT].numpy())
        return np.concatenate(parts) if parts else np.zeros((0, embeddings.shape[1]), np.float32)

    return EmbeddingScorer(name or f"version {version.version}", encode, aligned)


def query_inputs(queries: Queries, length: int | None = None) -> dict[str, tf.Tensor]:
    """The serving signature's inputs for ``queries``, histories cut or padded to ``length``."""
    return {
        USER_ID_INPUT: tf.constant(queries.user_ids),
        HISTORY_INPUT: tf.constant(_fit(queries.histories, length, HISTORY_PADDING)),
        HISTORY_TIMES_INPUT: tf.constant(_fit(queries.history_times, length, UNKNOWN_TIME)),
        HISTORY_EVENT_TYPES_INPUT: tf.constant(_fit(queries.history_types, length, "")),
        REQUEST_TIME_INPUT: tf.constant(queries.timestamps.astype(np.int64)),
        REQUEST_CONTEXT_INPUT: tf.constant(
            padded_tokens([split_tokens(c) for c in queries.contexts])
        ),
    }


def _fit(values: np.ndarray, length: int | None, padding: object) -> np.ndarray:
    """Rows cut or padded to the length the version was exported with."""
    if length is None or values.shape[1] == length:
        return values
    if values.shape[1] > length:
        return values[:, :length]
    filler = np.full((len(values), length - values.shape[1]), padding, dtype=values.dtype)
    return np.concatenate([values, filler], axis=1)
