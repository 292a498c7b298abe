"""One exported model version, loaded for serving: query tower plus item embeddings.

Reads only what the export layout (:mod:`streamrec.infra.contracts.export_layout`) promises, so
any trainer that writes that layout can be served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.infra.contracts.ann_index import read_ann_index, search_depths
from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.contracts.exported_version import QueryBatch, load_exported_version
from streamrec.infra.contracts.item_neighbours import ItemNeighbours, NeighbourBoost
from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage.ports.online_store import HistoryEntry
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
        # Mapped, as the index is: the server processes of a host share one copy.
        self._exported = load_exported_version(version, mapped=True)
        self.item_ids = self._exported.item_ids
        item_embeddings = self._exported.item_embeddings
        metadata = self._exported.metadata
        self.index = _item_index(version, item_embeddings, metadata)
        # Measured at export against exact search; an exact scan finds everything.
        self.index_recall = float(metadata.get("item_index", {}).get("recall_at_100", 1.0))
        if isinstance(self.index, ExactIndex):
            self.index_recall = 1.0
        self.rows = {item: row for row, item in enumerate(self.item_ids.tolist())}
        self.version = version.version
        self.history_length = self._exported.history_length
        self.popularity_prior = PopularityPrior.from_metadata(metadata)  # None: no boosts
        self.neighbour_boost = NeighbourBoost.from_metadata(metadata)  # None: no lists served
        self.neighbours = (
            _item_neighbours(version, len(self.item_ids)) if self.neighbour_boost else None
        )
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
        entries = history[: self.history_length]
        queries = QueryBatch(
            user_ids=np.array([user_id]),
            histories=np.array([[e.item_id for e in entries]], dtype=str).reshape(1, -1),
            history_times=np.array([[e.timestamp for e in entries]], np.int64).reshape(1, -1),
            history_types=np.array([[e.event_type for e in entries]], dtype=str).reshape(1, -1),
            request_times=np.array([request_time_ms], np.int64),
            contexts=[tuple(context)],
        )
        return self._exported.query_embeddings(queries)[0]

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
        raise StreamrecError(f"cannot load the item index of {version.root}: {exc}") from exc


def _item_neighbours(version: ModelVersion, items: int) -> ItemNeighbours:
    try:
        lists = ItemNeighbours.load(version.item_neighbours_file)
    except (OSError, ValueError, KeyError) as exc:
        raise StreamrecError(f"cannot load the item neighbours of {version.root}: {exc}") from exc
    if lists.rows > items:
        raise StreamrecError(
            f"model version {version.root} is inconsistent: neighbour lists for {lists.rows} "
            f"items but {items} item ids"
        )
    return lists
