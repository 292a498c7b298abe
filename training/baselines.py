"""Baselines every model is measured against in the same run, on the same queries.

- **Most popular:** the catalog ranked by how often each item was a training target.
- **EASE** (Steck, 2019): an item-to-item linear model fitted in closed form,
  ``B = I - P diag(1/diag(P))`` with ``P = (X^T X + lambda I)^-1``, the best-known simple
  baseline for next-item recommendation; used for catalogs up to ``EASE_MAX_ITEMS``, because
  ``P`` is a dense items x items inverse.
- **Item-kNN:** cosine similarities between item columns, the ``neighbours`` nearest kept
  (sparse), for larger catalogs.

The item-to-item models score a query by summing, over the items of its history (the same
point-in-time history the model reads), those items' rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from streamrec.training.queries import Queries

EASE_MAX_ITEMS = 20_000
EASE_L2 = 200.0
KNN_NEIGHBOURS = 100


class MostPopular:
    name = "most_popular"

    def __init__(self, target_counts: np.ndarray) -> None:
        self.counts = target_counts.astype(np.float32)

    def scores(self, queries: Queries, rows: slice) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(queries.targets[rows]), len(self.counts)))


class ItemToItem:
    """Scores from an items x items weight matrix (dense for EASE, sparse for item-kNN)."""

    def __init__(self, name: str, weights: np.ndarray | sparse.csr_matrix) -> None:
        self.name = name
        self.weights = weights

    def scores(self, queries: Queries, rows: slice) -> np.ndarray:
        history = queries.history_index[rows]
        n, items = len(history), self.weights.shape[0]
        present = history >= 0
        row_ids = np.repeat(np.arange(n), history.shape[1])[present.ravel()]
        x = sparse.csr_matrix(
            (np.ones(len(row_ids), dtype=np.float32), (row_ids, history[present])),
            shape=(n, items),
        )
        x.data[:] = 1.0  # an item twice in a history counts once
        return np.asarray(
            (x @ self.weights).todense() if sparse.issparse(self.weights) else x @ self.weights
        )


def item_to_item(user_ids: Sequence[str], item_index: np.ndarray, items: int) -> ItemToItem:
    """EASE when the catalog allows it, else item-kNN, fitted on (user, item) interactions."""
    x = _interactions(user_ids, item_index, items)
    return (
        ItemToItem("ease", _ease(x)) if items <= EASE_MAX_ITEMS else ItemToItem("item_knn", _knn(x))
    )


def _interactions(user_ids: Sequence[str], item_index: np.ndarray, items: int) -> sparse.csr_matrix:
    known = item_index >= 0
    users, user_rows = np.unique(np.asarray(user_ids)[known], return_inverse=True)
    x = sparse.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), (user_rows, item_index[known])),
        shape=(len(users), items),
    )
    x.data[:] = 1.0
    return x


def _ease(x: sparse.csr_matrix) -> np.ndarray:
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += EASE_L2
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def _knn(x: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0))).ravel()
    norms[norms == 0] = 1.0
    normalised = x @ sparse.diags(1.0 / norms)
    similarity = (normalised.T @ normalised).tocsr()
    similarity.setdiag(0.0)
    return _keep_top(similarity.tocsr(), KNN_NEIGHBOURS)


def _keep_top(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    rows, cols, values = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        data, index = matrix.data[start:end], matrix.indices[start:end]
        best = np.argsort(-data)[:k]
        rows.extend([row] * len(best))
        cols.extend(index[best])
        values.extend(data[best])
    return sparse.csr_matrix((values, (rows, cols)), shape=matrix.shape, dtype=np.float32)
