"""Catalog features of the candidate items: their categories, where the catalog has them.

Ids alone leave an item the model has seen a few times close to where it started. Its
categories, shared with items it has seen often, place it near them; they come from the item
catalog in the online store (``streamrec items import``), read once per training run. Items
the catalog does not know, and catalogs without categories, simply go without.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from streamrec.infra.contracts.items import Item
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StoreUnavailable, StreamrecError
from streamrec.infra.storage import open_online_store
from streamrec.training.query_tower import FIRST_ITEM

MAX_CATEGORIES = 8  # per item; the most common of an item's categories are kept


@dataclass(frozen=True)
class ItemFeatures:
    categories: list[str]  # the category vocabulary, most common first
    rows: np.ndarray  # [FIRST_ITEM + items, MAX_CATEGORIES] int32: 1 + category index, 0 none

    @classmethod
    def none(cls, items: int) -> ItemFeatures:
        return cls([], np.zeros((FIRST_ITEM + items, MAX_CATEGORIES), np.int32))

    @classmethod
    def from_catalog(cls, catalog: Iterable[Item], item_ids: Sequence[str]) -> ItemFeatures:
        """The categories of ``item_ids`` (a vocabulary's items, in its order)."""
        wanted = set(item_ids)
        found = {item.item_id: item.categories for item in catalog if item.item_id in wanted}
        counts = Counter(c for categories in found.values() for c in set(categories))
        names = sorted(counts, key=lambda c: (-counts[c], c))
        index = {name: position + 1 for position, name in enumerate(names)}
        rows = np.zeros((FIRST_ITEM + len(item_ids), MAX_CATEGORIES), np.int32)
        for row, item_id in enumerate(item_ids, start=FIRST_ITEM):
            kept = sorted(set(found.get(item_id, ())), key=index.get)[:MAX_CATEGORIES]
            rows[row, : len(kept)] = [index[c] for c in kept]
        return cls(names, rows)

    @property
    def present(self) -> bool:
        return bool(self.categories)

    def describe(self) -> dict:
        return {
            "categories": len(self.categories),
            "items_with_categories": int((self.rows[FIRST_ITEM:, 0] > 0).sum()),
        }


def catalog_features(config: Config, item_ids: Sequence[str], enabled: bool) -> ItemFeatures:
    """The item features of a training run, from the online store's catalog if ``enabled``."""
    if not enabled:
        return ItemFeatures.none(len(item_ids))
    try:
        return ItemFeatures.from_catalog(open_online_store(config).catalog(), item_ids)
    except StoreUnavailable as exc:
        raise StreamrecError(
            f"{exc}; the trainer reads item categories from the online store's catalog: start "
            "it, or set training.item_features = false to train on ids alone"
        ) from exc
