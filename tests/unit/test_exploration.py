"""Exploration slots: how many, where, and never an item the request excludes."""

import random

import numpy as np

from streamrec.serving.exploration import explore
from streamrec.serving.item_filter import ItemFilter

CATALOG = np.array([f"i{n}" for n in range(1000)])
RANKED = [(f"i{n}", float(100 - n)) for n in range(10)]


def test_off_by_default_share_changes_nothing():
    answer, drawn = explore(RANKED, 10, CATALOG, ItemFilter(), 0.0, random.Random(1))
    assert answer == RANKED and not drawn


def test_a_share_replaces_the_last_slots_with_admitted_items_drawn_from_the_catalog():
    excluded = frozenset(f"i{n}" for n in range(10, 500))
    for seed in range(20):
        answer, drawn = explore(RANKED, 10, CATALOG, ItemFilter(excluded), 0.2, random.Random(seed))
        assert len(answer) == 10 and len(drawn) == 2
        assert [item for item in answer if item[0] not in drawn] == RANKED[:8]  # order kept
        assert not drawn & excluded and not drawn & {item for item, _ in RANKED[:8]}
        assert len({item for item, _ in answer}) == 10


def test_drawn_items_land_at_random_positions():
    positions = set()
    for seed in range(30):
        answer, drawn = explore(RANKED, 10, CATALOG, ItemFilter(), 0.1, random.Random(seed))
        positions |= {i for i, (item, _) in enumerate(answer) if item in drawn}
    assert len(positions) > 5


def test_a_catalog_without_other_admitted_items_keeps_the_ranking():
    catalog = np.array([item for item, _ in RANKED])
    answer, drawn = explore(RANKED, 10, catalog, ItemFilter(), 0.3, random.Random(2))
    assert answer == RANKED and not drawn
