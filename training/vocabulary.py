"""The ids a model knows: the items and users of its training events, and item frequencies.

Items are ordered from the most to the least frequent training target (ties by id), so an
exported index lists the head first. Frequencies feed the loss's logQ correction; every item
gets a floor of one occurrence, because an item that is only ever a history item is still a
candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamrec.training.query_tower import FIRST_ITEM


@dataclass(frozen=True)
class Vocabulary:
    items: list[str]
    item_counts: np.ndarray  # training targets per item, in ``items`` order
    users: int

    @classmethod
    def from_events(cls, users: np.ndarray, items: np.ndarray) -> Vocabulary:
        names, counts = np.unique(items, return_counts=True)
        order = np.lexsort((names, -counts))
        return cls(names[order].tolist(), counts[order], len(np.unique(users)))

    def index(self) -> dict[str, int]:
        """Item id -> the row the towers use (after padding, unknown and the start token)."""
        return {item: FIRST_ITEM + row for row, item in enumerate(self.items)}

    def log_frequency(self) -> np.ndarray:
        """log of each embedding row's share of the training targets (rows, not just items)."""
        counts = np.concatenate([np.ones(FIRST_ITEM), np.maximum(self.item_counts, 1)])
        return np.log(counts / counts.sum()).astype(np.float32)
