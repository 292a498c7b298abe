"""One exported model version, loaded for serving: query tower plus item embeddings.

Reads only what the export layout (:mod:`streamrec.infra.contracts.export_layout`) promises, so
any trainer that writes that layout can be served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.ann_index import read_ann_index, search_depths
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
from streamrec.infra.ports.online_store import HistoryEntry
from streamrec.serving.compiled_tower import (
    TOLERANCE,
    CompiledQueryTower,
    QueryFunction,
    agrees_with,
)
from streamrec.serving.item_filter import ItemFilter, filtered_top_k
from streamrec.serving.item_index import ApproximateIndex, ExactIndex


class RetrievalModel:
    def __init__(self, version: ModelVersion) -> None:
        try:
            metadata = version.metadata()
            self.item_ids = np.array(version.item_ids_file.read_text().splitlines())
            # Mapped, as the index is: the server processes of a host share one copy.
            item_embeddings = np.load(version.item_embeddings_file, mmap_mode="r")
            self._signature = tf.saved_model.load(str(version.saved_model_dir)).signatures[
                SIGNATURE_NAME
            ]
        except (OSError, ValueError, KeyError) as exc:
            raise StreamrecError(f"cannot load model version {version.root}: {exc}") from None
        if len(self.item_ids) != len(item_embeddings):
            raise StreamrecError(
                f"model version {version.root} is inconsistent: {len(self.item_ids)} item ids "
                f"but {len(item_embeddings)} embeddings"
            )
        self.index = _item_index(version, item_embeddings, metadata)
        # Measured at export against exact search; an exact scan finds everything.
        self.index_recall = float(metadata.get("item_index", {}).get("recall_at_100", 1.0))
        if isinstance(self.index, ExactIndex):
            self.index_recall = 1.0
        self.rows = {item: row for row, item in enumerate(self.item_ids.tolist())}
        self.version = version.version
        self.history_length = int(metadata["history_length"])
        self._inputs = set(self._signature.structured_input_signature[1])  # v1: fewer
        # (user_id, history most recent first, request time ms, context tokens) -> [dim]
        self.query_embedding: QueryFunction
        # "compiled", or why the signature computes queries
        self.query_path: str
        self.query_embedding, self.query_path = self._fastest_query(version, metadata)

    def _fastest_query(self, version: ModelVersion, metadata: dict) -> tuple[QueryFunction, str]:
        """The compiled tower if the version has one that agrees with the signature, else the
        signature; and which, with the reason for the signature."""
        described = metadata.get("compiled_query", {})
        if not version.compiled_query_file.exists():
            reason = described.get("reason", "the version has no compiled tower")
            return self._signature_query, f"signature ({reason})"
        known = self.item_ids[: described.get("query_items", 0)].tolist()
        try:
            compiled = CompiledQueryTower(
                version.compiled_query_file.read_bytes(), known, self.history_length
            )
        except (OSError, ValueError, RuntimeError) as exc:
            return self._signature_query, f"signature (cannot load the compiled tower: {exc})"
        difference = agrees_with(compiled, self._signature_query, known, self.history_length)
        if not difference <= TOLERANCE:
            return self._signature_query, f"signature (compiled tower differs by {difference:.2g})"
        return compiled, "compiled"

    def _signature_query(
        self,
        user_id: str,
        history: Sequence[HistoryEntry],
        request_time_ms: int,
        context: Sequence[str] = (),
    ) -> np.ndarray:
        """``history`` most recent first, as the online store returns it; ``context`` the
        request's tokens (:func:`~streamrec.infra.contracts.feature_spec.context_tokens`)."""
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
            REQUEST_CONTEXT_INPUT: tf.constant([list(context) or [""]]),
        }
        outputs = self._signature(**{k: v for k, v in inputs.items() if k in self._inputs})
        return outputs[QUERY_OUTPUT].numpy()[0]

    def top_k(self, query: np.ndarray, k: int, admitted: ItemFilter) -> list[tuple[str, float]]:
        """The ``k`` best admitted items by dot product, best first."""
        return filtered_top_k(self.index.search, query, k, self.item_ids, admitted)

    def rank(self, query: np.ndarray, candidates: Sequence[str]) -> tuple[list, list[str]]:
        """Known candidates ``(item_id, score)`` best first (ties in request order), and the
        unknown ones in request order. A candidate named twice is ranked once."""
        candidates = list(dict.fromkeys(candidates))
        known = [c for c in candidates if c in self.rows]
        unknown = [c for c in candidates if c not in self.rows]
        scores = self.index.scores(query, np.array([self.rows[c] for c in known], np.int64))
        order = np.argsort(-scores, kind="stable")
        return [(known[i], float(scores[i])) for i in order], unknown


def _item_index(
    version: ModelVersion, embeddings: np.ndarray, metadata: dict
) -> ExactIndex | ApproximateIndex:
    """The version's approximate index if it has one, else an exact scan."""
    if not version.ann_index_file.exists():
        return ExactIndex(embeddings)
    try:
        described = metadata["item_index"]
        index = read_ann_index(version.ann_index_file, described)
        return ApproximateIndex(index, embeddings, search_depths(described))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise StreamrecError(f"cannot load the item index of {version.root}: {exc}") from None
