"""One exported model version, loaded for serving: query tower plus item embeddings.

Reads only what the export layout (:mod:`streamrec.infra.contracts.export_layout`) promises, so
any trainer that writes that layout can be served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.export_layout import (
    HISTORY_EVENT_TYPES_INPUT,
    HISTORY_INPUT,
    HISTORY_PADDING,
    HISTORY_TIMES_INPUT,
    QUERY_OUTPUT,
    REQUEST_TIME_INPUT,
    SIGNATURE_NAME,
    UNKNOWN_TIME,
    USER_ID_INPUT,
    ModelVersion,
)
from streamrec.infra.errors import StreamrecError
from streamrec.infra.ports.online_store import HistoryEntry
from streamrec.infra.ports.result_cache import RankedItems


class RetrievalModel:
    def __init__(self, version: ModelVersion) -> None:
        try:
            metadata = version.metadata()
            self.item_ids = np.array(version.item_ids_file.read_text().splitlines())
            self.item_embeddings = np.load(version.item_embeddings_file)
            self._signature = tf.saved_model.load(str(version.saved_model_dir)).signatures[
                SIGNATURE_NAME
            ]
        except (OSError, ValueError, KeyError) as exc:
            raise StreamrecError(f"cannot load model version {version.root}: {exc}") from None
        if len(self.item_ids) != len(self.item_embeddings):
            raise StreamrecError(
                f"model version {version.root} is inconsistent: {len(self.item_ids)} item ids "
                f"but {len(self.item_embeddings)} embeddings"
            )
        self.version = version.version
        self.history_length = int(metadata["history_length"])
        self._inputs = set(self._signature.structured_input_signature[1])  # v1: fewer

    def query_embedding(
        self, user_id: str, history: Sequence[HistoryEntry], request_time_ms: int
    ) -> np.ndarray:
        """``history`` most recent first, as the online store returns it."""
        entries = list(history[: self.history_length])
        padding = self.history_length - len(entries)
        inputs = {
            USER_ID_INPUT: tf.constant([user_id]),
            HISTORY_INPUT: tf.constant(
                [[e.item_id for e in entries] + [HISTORY_PADDING] * padding]
            ),
            HISTORY_TIMES_INPUT: tf.constant(
                [[e.timestamp for e in entries] + [UNKNOWN_TIME] * padding], tf.int64
            ),
            HISTORY_EVENT_TYPES_INPUT: tf.constant(
                [[e.event_type for e in entries] + [""] * padding]
            ),
            REQUEST_TIME_INPUT: tf.constant([request_time_ms], tf.int64),
        }
        outputs = self._signature(**{k: v for k, v in inputs.items() if k in self._inputs})
        return outputs[QUERY_OUTPUT].numpy()[0]

    def top_k(self, query: np.ndarray, k: int) -> RankedItems:
        """Exact top ``k`` by dot product over the whole catalog, best first."""
        scores = self.item_embeddings @ query
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return RankedItems(self.item_ids[best].tolist(), scores[best].astype(float).tolist())

    def recommend(
        self, user_id: str, history: Sequence[HistoryEntry], k: int, request_time_ms: int
    ) -> RankedItems:
        return self.top_k(self.query_embedding(user_id, history, request_time_ms), k)
