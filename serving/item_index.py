"""Top-n items by inner product with a query: the serving side of the candidate tower.

Indexes follow the shape of TFRS's ``factorized_top_k`` layers: built once from the item
embeddings of a version, then searched per request with ``search(query, n)``.
"""

from __future__ import annotations

import numpy as np


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
