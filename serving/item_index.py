"""Top-n items by inner product with a query: the serving side of the candidate tower.

Indexes follow the shape of TFRS's ``factorized_top_k`` layers: built once from the item
embeddings of a version, then searched per request with ``search(query, n)``.
"""

from __future__ import annotations

import faiss
import numpy as np

from streamrec.infra.contracts.ann_index import search_parameters


class ExactIndex:
    """Scores every item: exact, and fast enough for catalogs up to about 100k items here."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self._embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._embeddings)

    def search(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the ``n`` best items and their scores, best first (ties by row)."""
        scores = self._embeddings @ query.astype(np.float32, copy=False)
        n = min(n, len(scores))
        if n <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        best = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(n)
        best = best[np.lexsort((best, -scores[best]))]
        return best, scores[best]

    def scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The scores of these rows."""
        return self._embeddings[rows] @ query.astype(np.float32, copy=False)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The embeddings of these rows, ``[len(rows), dim]``."""
        return self._embeddings[rows]


class ApproximateIndex:
    """A faiss index built at export (HNSW or IVF over inner products), checked then to find
    at least 95% of exact search's top 100, and of shorter top lists at shallower depths
    (``depths``: :func:`~streamrec.infra.contracts.ann_index.search_depths`). Scores come from
    the embeddings, so they are exact whichever items the index finds."""

    def __init__(
        self, index: faiss.Index, embeddings: np.ndarray, depths: list[tuple[int, int]]
    ) -> None:
        if index.ntotal != len(embeddings):
            raise ValueError(f"its index holds {index.ntotal} items, not {len(embeddings)}")
        self._index = index
        self._exact = ExactIndex(embeddings)
        self._parameters = [(size, search_parameters(index, depth)) for size, depth in depths]

    def __len__(self) -> int:
        return len(self._exact)

    def search(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`ExactIndex.search`; a search that finds fewer than ``n`` items (an IVF
        index probes only some lists) is answered exactly instead."""
        n = min(n, len(self))
        vector = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        parameters = next((p for size, p in self._parameters if size >= n), self._parameters[-1][1])
        scores, rows = self._index.search(vector, n, params=parameters)
        found = rows[0] >= 0
        if found.sum() < n:
            return self._exact.search(query, n)
        return rows[0].astype(np.int64), scores[0]

    def scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self._exact.scores(query, rows)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        return self._exact.vectors(rows)
