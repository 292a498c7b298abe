"""Catalog categories as candidate-tower features: the rows the tower reads, and its vectors."""

import numpy as np

from streamrec.infra.contracts.items import Item
from streamrec.training.item_features import MAX_CATEGORIES, ItemFeatures
from streamrec.training.query_tower import FIRST_ITEM


def test_categories_are_indexed_most_common_first_and_unknown_items_have_none():
    catalog = [
        Item("a", ("shoes", "sale")),
        Item("b", ("shoes",)),
        Item("gone", ("hats",)),  # not in the vocabulary: its category is not either
    ]
    features = ItemFeatures.from_catalog(catalog, ["a", "b", "c"])
    assert features.categories == ["shoes", "sale"]
    assert features.rows.shape == (FIRST_ITEM + 3, MAX_CATEGORIES)
    assert not features.rows[:FIRST_ITEM].any()  # padding, unknown, start
    assert features.rows[FIRST_ITEM].tolist()[:3] == [1, 2, 0]  # a: shoes, sale
    assert features.rows[FIRST_ITEM + 1].tolist()[:2] == [1, 0]  # b: shoes
    assert not features.rows[FIRST_ITEM + 2].any()  # c: not in the catalog
    assert features.describe() == {"categories": 2, "items_with_categories": 2}


def test_an_item_keeps_its_most_common_categories():
    many = tuple(f"c{n}" for n in range(MAX_CATEGORIES + 2))
    catalog = [Item("a", many), *(Item(f"x{n}", many[1:]) for n in range(3))]
    features = ItemFeatures.from_catalog(catalog, ["a", "x0", "x1", "x2"])
    kept = {features.categories[i - 1] for i in features.rows[FIRST_ITEM] if i}
    assert len(kept) == MAX_CATEGORIES and "c0" not in kept  # c0 is the rarest


def test_the_item_tower_adds_the_mean_of_an_item_s_categories_to_its_id():
    from streamrec.training.item_tower import ItemTower

    features = ItemFeatures.from_catalog([Item("a", ("x", "y")), Item("b", ())], ["a", "b"])
    tower = ItemTower(features, dim=4)
    table = tower.table().numpy()
    ids = tower.ids.embeddings.numpy()
    categories = tower.categories.embeddings.numpy()
    a, b = FIRST_ITEM, FIRST_ITEM + 1
    np.testing.assert_allclose(table[a], ids[a] + (categories[1] + categories[2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(table[b], ids[b], rtol=1e-6)  # no categories: the id alone


def test_without_a_catalog_the_tower_is_the_id_embedding():
    from streamrec.training.item_tower import ItemTower

    tower = ItemTower(ItemFeatures.none(2), dim=4)
    assert tower.categories is None
    np.testing.assert_array_equal(tower.table().numpy(), tower.ids.embeddings.numpy())
