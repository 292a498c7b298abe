"""A version's item neighbour lists: fitted on the training window, scored as serving adds them.

The lists are the positive part of the item-to-item baseline's weights (EASE, or item-kNN on
large catalogs; :mod:`.baselines`), each row cut to its ``per_item`` largest: the negative
weights of EASE mostly say "not bought together", which the towers already say, and a boost
that is never negative keeps serving's top k exact with one index search
(:mod:`streamrec.infra.contracts.item_neighbours`). On the retail year, the lists cut to 100
per item ranked within 5% of the full EASE matrix.

The evaluation scores a query as serving will: the distinct known items of its ``history``
newest events, their lists summed, times the weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from streamrec.infra.contracts.item_neighbours import ItemNeighbours, NeighbourBoost
from streamrec.training.baselines import ItemToItem, item_to_item
from streamrec.training.evaluate import ItemBoosts
from streamrec.training.queries import Queries


def fit_item_neighbours(
    user_ids: Sequence[str], item_index: np.ndarray, items: int, per_item: int
) -> ItemNeighbours:
    """The lists of ``items`` catalog rows from (user, item row) interactions; rows -1 are
    ignored."""
    return item_neighbours(item_to_item(user_ids, item_index, items), per_item)


def item_neighbours(baseline: ItemToItem, per_item: int) -> ItemNeighbours:
    """The lists of an item-to-item baseline already fitted: each row's ``per_item`` largest
    positive weights."""
    weights = baseline.weights
    if sparse.issparse(weights):
        weights = weights.tocsr(copy=True)
        weights.data[weights.data < 0] = 0
        weights.eliminate_zeros()
        return _top_of_sparse(weights, per_item)
    return _top_of_dense(np.asarray(weights), per_item)


def neighbour_boosts(
    neighbours: ItemNeighbours,
    boost: NeighbourBoost,
    columns: np.ndarray | None = None,
    catalog_size: int | None = None,
) -> ItemBoosts:
    """``weight * sum of the history's lists`` ``[rows, catalog]`` for any queries' ``rows``.
    ``columns`` maps the lists' item rows to the columns of a catalog of ``catalog_size``
    (-1: not in it), when the catalog is not the version's own."""
    matrix = _as_matrix(neighbours)
    if columns is not None:
        matrix = _in_columns(matrix, columns, catalog_size or 0)
    lists = matrix.tocsr()

    def boosted(queries: Queries, rows: slice) -> np.ndarray:
        history = _version_rows(queries.history_index[rows, : boost.history], columns)
        n = len(history)
        present = history >= 0
        query_rows = np.repeat(np.arange(n), history.shape[1])[present.ravel()]
        read = sparse.csr_matrix(
            (np.ones(len(query_rows), np.float32), (query_rows, history[present])),
            shape=(n, neighbours.rows),
        )
        read.data[:] = 1.0  # an item twice in a history counts once, as serving reads it
        return (boost.weight * (read @ lists)).toarray().astype(np.float32)

    return boosted


def _version_rows(history: np.ndarray, columns: np.ndarray | None) -> np.ndarray:
    """Catalog columns of a history as the version's item rows (-1 where it has none)."""
    if columns is None:
        return history
    row_of = np.full(int(max(columns.max(initial=-1), history.max(initial=-1))) + 2, -1, np.int64)
    known = columns >= 0
    row_of[columns[known]] = np.flatnonzero(known)
    return np.where(history >= 0, row_of[history], -1)


def _as_matrix(neighbours: ItemNeighbours) -> sparse.csr_matrix:
    rows = neighbours.rows
    return sparse.csr_matrix(
        (neighbours.weights, neighbours.indices, neighbours.indptr), shape=(rows, rows)
    )


def _in_columns(
    matrix: sparse.csr_matrix, columns: np.ndarray, catalog_size: int
) -> sparse.csr_matrix:
    """The lists with each neighbour row moved to its catalog column; neighbours the catalog
    lacks are dropped."""
    catalog = max(catalog_size, int(columns.max(initial=-1)) + 1)
    coo = matrix.tocoo()
    moved = columns[coo.col]
    keep = moved >= 0
    return sparse.csr_matrix(
        (coo.data[keep], (coo.row[keep], moved[keep])), shape=(matrix.shape[0], catalog)
    )


def _top_of_dense(weights: np.ndarray, per_item: int) -> ItemNeighbours:
    items = len(weights)
    keep = min(per_item, max(items - 1, 0))
    if keep == 0:
        return ItemNeighbours(np.zeros(items + 1, np.int64), np.empty(0, np.int32),
                              np.empty(0, np.float32))  # fmt: skip
    best = np.argpartition(-weights, keep - 1, axis=1)[:, :keep]
    values = np.take_along_axis(weights, best, axis=1)
    return _from_pairs(np.repeat(np.arange(items), keep), best.ravel(), values.ravel(), items)


def _top_of_sparse(weights: sparse.csr_matrix, per_item: int) -> ItemNeighbours:
    rows, columns, values = [], [], []
    for row in range(weights.shape[0]):
        start, end = weights.indptr[row], weights.indptr[row + 1]
        best = np.argsort(-weights.data[start:end], kind="stable")[:per_item]
        rows.append(np.full(len(best), row))
        columns.append(weights.indices[start:end][best])
        values.append(weights.data[start:end][best])
    return _from_pairs(*(np.concatenate(part) if part else np.empty(0) for part in
                         (rows, columns, values)), weights.shape[0])  # fmt: skip


def _from_pairs(
    rows: np.ndarray, columns: np.ndarray, values: np.ndarray, items: int
) -> ItemNeighbours:
    """Positive ``(row, column, value)`` triples as lists, each row's by column."""
    positive = values > 0
    rows, columns, values = rows[positive], columns[positive], values[positive]
    order = np.lexsort((columns, rows))
    indptr = np.zeros(items + 1, np.int64)
    np.cumsum(np.bincount(rows.astype(np.int64), minlength=items), out=indptr[1:])
    return ItemNeighbours(indptr, columns[order].astype(np.int32), values[order].astype(np.float32))
