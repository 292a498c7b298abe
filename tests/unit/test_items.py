"""Item schema v1 and the mapping of catalog exports to item records."""

import pytest

from streamrec.infra.contracts.items import InvalidItem, Item, item_from_dict, parse_item
from streamrec.infra.core.errors import StreamrecError
from streamrec.ingest.item_import import ItemMapping
from streamrec.ingest.row_mapping import RowRejected
from streamrec.ingest.tabular_files import SourceRow


def test_an_item_record_round_trips_with_defaults():
    item = parse_item(b'{"item_id": "i-1", "categories": ["shoes", "shoes", "sale"]}')
    assert item == Item("i-1", ("shoes", "sale"), True, None)
    assert item_from_dict(item.to_dict()) == item


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"item_id": ""}, "item_id must be a non-empty string"),
        ({"item_id": "i", "colour": "red"}, "unknown field(s): colour"),
        ({"item_id": "i", "categories": "shoes"}, "categories must be a list"),
        ({"item_id": "i", "available": "yes"}, "available must be true or false"),
        ({"item_id": "i", "created_at": 1_767_571_200}, "outside 2000-01-01..2100-01-01"),
    ],
)
def test_invalid_item_records_name_the_problem(record, reason):
    with pytest.raises(InvalidItem, match=reason.replace("(", r"\(").replace(")", r"\)")):
        item_from_dict(record)


MAPPING = ItemMapping(
    {"item_id": "sku", "categories": "cats", "available": "in_stock", "created_at": "added"}
)


def test_catalog_rows_become_item_records():
    row = SourceRow(
        1, {"sku": "85123.0", "cats": "home| lights |", "in_stock": "No", "added": "2026-01-05"}
    )
    assert MAPPING.item(row) == Item("85123", ("home", "lights"), False, 1_767_571_200_000)


def test_rows_that_cannot_be_items_are_rejected_with_a_kind():
    with pytest.raises(RowRejected) as rejected:
        MAPPING.item(SourceRow(1, {"sku": "a", "cats": "", "in_stock": "maybe", "added": ""}))
    assert rejected.value.kind == "bad availability"
    with pytest.raises(RowRejected) as rejected:
        MAPPING.item(SourceRow(2, {"sku": "", "cats": "", "in_stock": "1", "added": ""}))
    assert rejected.value.kind == "invalid item"


def test_a_mapping_that_cannot_work_fails_before_any_row():
    with pytest.raises(StreamrecError, match="--map needs item_id"):
        ItemMapping({"categories": "c"}).check(["c"], "f.csv")
    with pytest.raises(StreamrecError, match=r"f\.csv has no column 'sku'"):
        MAPPING.check(["cats", "in_stock", "added"], "f.csv")


def test_a_written_catalog_csv_reads_back_as_the_same_items(tmp_path):
    from streamrec.infra.cli.arguments import field_map
    from streamrec.ingest.item_import import CATALOG_CSV_MAP, write_item_csv
    from streamrec.ingest.tabular_files import TabularFile

    items = [Item("i-1", ("home", "lights")), Item("i,2", (), False), Item("i-3", ("a b",))]
    assert write_item_csv(tmp_path / "items.csv", items) == 3
    mapping = ItemMapping(field_map(CATALOG_CSV_MAP))
    read = [mapping.item(row) for row in TabularFile(tmp_path / "items.csv", "csv").rows()]
    assert read == items
