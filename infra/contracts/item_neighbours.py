"""A version's item neighbours: which items go with which, chosen by training, applied by serving.

A version may add to each item's score a boost for going with what the user just had::

    score(item) = query · item + prior(item) + weight * sum(neighbours[h, item] for h in H)

``H`` is the set of distinct items among the user's ``history`` newest events that the
version knows, and ``neighbours[h, item]`` the weight of ``item`` in ``h``'s list: up to
``per_item`` items, every weight positive, fitted on the training window's co-occurrences (EASE
when the catalog allows it, else item-kNN; :mod:`streamrec.training.baselines`).

Why a second component beside the towers: a dot product of a few dozen dimensions holds the
broad taste of a history, not a full items x items table of what is bought together. On small
catalogs with few users (the retail year: 3,665 items, 4,339 customers) such a table ranks
next purchases as well as the towers do, and the two are better summed than either alone.
Training chooses ``weight`` on its validation share, so a stream the table does not help gets
weight 0 and is served as before.

Why exact serving stays cheap: every weight is positive and items outside the lists of ``H``
get nothing, so the boosted top k lies among the model's own top k and the listed items, and
the lists are read best boost first until none left can pass the k-th score.

The lists are stored in the version as ``item_index/item_neighbours.npz``: compressed sparse
rows over the version's item rows, ``indptr`` int64 ``[rows + 1]``, ``indices`` int32 ``[n]``
and ``weights`` float32 ``[n]``, written whatever the weight. ``metadata.json``'s
``item_neighbours`` entry holds ``history``, ``per_item`` and ``weight`` (dot-product units; 0
is none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METADATA_KEY = "item_neighbours"
_DENSE_SUM_FACTOR = 16  # rows per listed neighbour below which a dense sum beats sorting


@dataclass(frozen=True)
class NeighbourBoost:
    """How a version's neighbour lists are added to its scores."""

    history: int  # how many of the newest history events' items are read
    per_item: int  # the longest list kept per item
    weight: float  # in units of the dot product; 0 is no boost

    def __post_init__(self) -> None:
        if self.history < 1 or self.per_item < 1:
            raise ValueError(
                f"item neighbours: history and per_item must be 1 or more, "
                f"got {self.history} and {self.per_item}"
            )
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(
                f"item neighbours: weight must be finite and 0 or more, got {self.weight}"
            )

    def to_metadata(self) -> dict:
        return {"history": self.history, "per_item": self.per_item, "weight": self.weight}

    @classmethod
    def from_metadata(cls, metadata: dict) -> NeighbourBoost | None:
        """The version's boost, or None if it has none (older versions) or its weight is 0."""
        described = metadata.get(METADATA_KEY)
        if not described or not described.get("weight"):
            return None
        return cls(
            int(described["history"]), int(described["per_item"]), float(described["weight"])
        )


@dataclass(frozen=True)
class ItemNeighbours:
    """Each item row's list of (neighbour row, positive weight), as compressed sparse rows."""

    indptr: np.ndarray  # int64 [rows + 1]
    indices: np.ndarray  # int32 [n]
    weights: np.ndarray  # float32 [n], each > 0

    def __post_init__(self) -> None:
        rows = len(self.indptr) - 1
        if rows < 0 or self.indptr[0] != 0 or self.indptr[-1] != len(self.indices):
            raise ValueError("item neighbours: indptr does not delimit the lists")
        if np.any(np.diff(self.indptr) < 0):
            raise ValueError("item neighbours: indptr decreases")
        if len(self.indices) != len(self.weights):
            raise ValueError("item neighbours: indices and weights differ in length")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= rows):
            raise ValueError("item neighbours: a neighbour row is outside the items")
        if np.any(~(self.weights > 0)):
            raise ValueError("item neighbours: every weight must be positive")

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The neighbours of ``rows`` (distinct item rows) with their weights summed over
        them: ``(neighbour rows ascending [m], summed weights [m])``."""
        rows = np.asarray(rows, np.int64)
        rows = rows[(rows >= 0) & (rows < self.rows)]
        starts, lengths = self.indptr[rows], self.indptr[rows + 1] - self.indptr[rows]
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        # Every list's positions at once: each list's start, repeated, plus a running count.
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        taken = offsets + np.arange(total)
        neighbours, weights = self.indices[taken], self.weights[taken].astype(np.float64)
        if self.rows <= _DENSE_SUM_FACTOR * total:  # summing into every row is cheaper
            summed = np.bincount(neighbours, weights=weights, minlength=self.rows)
            found = np.flatnonzero(summed > 0)  # every weight is positive
            return found, summed[found]
        # Sorted with each entry's position in the low bits: a plain sort, not an argsort.
        keys = (neighbours.astype(np.int64) << 32) | np.arange(total)
        keys.sort()
        ordered = keys >> 32
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        return ordered[starts], np.add.reduceat(weights[keys & 0xFFFFFFFF], starts)

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, indptr=self.indptr, indices=self.indices, weights=self.weights)

    @classmethod
    def load(cls, path: Path) -> ItemNeighbours:
        with np.load(path) as stored:
            return cls(
                stored["indptr"].astype(np.int64),
                stored["indices"].astype(np.int32),
                stored["weights"].astype(np.float32),
            )
