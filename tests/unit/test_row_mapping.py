"""Rows of external files to events: mapping, filters, times, stable ids, readers."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamrec.infra.core.errors import StreamrecError
from streamrec.ingest.row_mapping import RowFilter, RowMapping, RowRejected
from streamrec.ingest.tabular_files import SourceRow, TabularFile
from tests.conftest import RETAIL_EXCERPT, shared_dataset

RETAIL_MAP = {"user_id": "CustomerID", "item_id": "StockCode", "timestamp": "InvoiceDate"}
RETAIL_FILTERS = (RowFilter.parse("Quantity>0"), RowFilter.parse("InvoiceNo!~^C"))


def _retail(timestamp_format):
    return RowMapping(RETAIL_MAP, "purchase", timestamp_format, where=RETAIL_FILTERS)


def _first_rows(path, n):
    rows = TabularFile(path, "csv").rows()
    return [next(rows) for _ in range(n)]


def test_both_retail_exports_give_the_same_events_for_the_same_rows():
    december = _first_rows(RETAIL_EXCERPT, 200)
    year = _first_rows(shared_dataset("online-retail-2010-12-to-2011-12.csv.gz"), 200)
    assert december[0].values["CustomerID"] == "17850"
    assert year[0].values["CustomerID"] == "17850.0"
    from_december = [_event_or_kind(_retail("%d/%m/%Y %H:%M"), row) for row in december]
    from_year = [_event_or_kind(_retail("iso"), row) for row in year]
    assert from_december == from_year
    first = from_december[0]
    assert (first.user_id, first.item_id, first.timestamp) == ("17850", "85123A", 1291191960000)
    assert first.event_id.startswith("imp-") and first.event_type == "purchase"


def _event_or_kind(mapping, row):
    try:
        return mapping.event(row)
    except RowRejected as rejected:
        return rejected.kind


def _row(**values):
    return SourceRow(7, {"u": "17850.0", "i": "A1", "t": "2026-01-05 10:00:00", **values})


MAPPING = RowMapping({"user_id": "u", "item_id": "i", "timestamp": "t"}, "view")


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ({"u": ""}, "no user_id"),
        ({"i": "  "}, "no item_id"),
        ({"t": "yesterday"}, "bad timestamp"),
        ({"u": "x" * 300}, "invalid event"),
        ({"u": "caf\udce9"}, "undecodable text"),
    ],
)
def test_rows_that_cannot_be_events_are_rejected_with_a_kind(values, kind):
    with pytest.raises(RowRejected) as rejected:
        MAPPING.event(_row(**values))
    assert rejected.value.kind == kind and rejected.value.detail


def test_undecodable_bytes_in_an_unused_column_do_not_matter():
    assert MAPPING.event(_row(description="\udca3 5 off")).user_id == "17850"


def test_ids_are_stable_and_can_come_from_chosen_columns():
    assert MAPPING.event(_row()) == MAPPING.event(_row())
    assert MAPPING.event(_row()).event_id != MAPPING.event(_row(i="A2")).event_id
    by_invoice = RowMapping(MAPPING.columns, "view", event_id_from=("invoice", "line"))
    first = by_invoice.event(_row(invoice="536365", line="1.0"))
    assert first.event_id == by_invoice.event(_row(invoice="536365", line="1", i="X")).event_id


def test_context_columns_become_the_events_context_and_empty_cells_no_entry():
    mapping = RowMapping({**MAPPING.columns, "context.country": "c", "context.shop": "s"}, "view")
    mapping.check(["u", "i", "t", "c", "s"], "file.csv")
    event = mapping.event(_row(c=" France ", s=""))
    assert event.context == {"country": "France"}
    assert event.event_id == MAPPING.event(_row()).event_id  # context is not the identity
    with pytest.raises(RowRejected, match="at most 256 characters") as rejected:
        mapping.event(_row(c="x" * 300))
    assert rejected.value.kind == "invalid event"


@pytest.mark.parametrize(
    ("text", "value", "kept"),
    [
        ("Quantity>0", "6", True),
        ("Quantity>0", "-1", False),
        ("Quantity >= 10", "9.5", False),
        ("InvoiceNo!~^C", "C536379", False),
        ("InvoiceNo!~^C", "536365", True),
        ("Country=United Kingdom", "United Kingdom", True),
        ("Country!=France", "France", False),
        ("Code~^[0-9]+$", "85123A", False),
    ],
)
def test_where_filters_compare_numbers_as_numbers_and_match_regexes(text, value, kept):
    assert RowFilter.parse(text).keeps(value) is kept


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (RowMapping({"user_id": "u", "item_id": "i"}, "view"), "--map needs timestamp"),
        (RowMapping({**MAPPING.columns, "price": "p"}, "view"), "price is not an event field"),
        (RowMapping({**MAPPING.columns, "context.": "p"}, "view"), "context. is not an event"),
        (RowMapping({**MAPPING.columns, "context.shop": "nope"}, "view"), "no column 'nope'"),
        (RowMapping(MAPPING.columns, None), "either as --map event_type=COLUMN or --event-type"),
        (RowMapping(MAPPING.columns, "like"), "--event-type 'like' is not one of"),
        (
            RowMapping({**MAPPING.columns, "user_id": "Customer"}, "view"),
            "f.csv has no column 'Customer' (it has: u, i, t)",
        ),
    ],
)
def test_options_that_cannot_work_fail_before_any_row_is_read(mapping, message):
    with pytest.raises(StreamrecError) as error:
        mapping.check(["u", "i", "t"], "f.csv")
    assert message in str(error.value)


def test_a_malformed_where_is_a_clear_error():
    with pytest.raises(StreamrecError, match="is not COLUMN OP VALUE"):
        RowFilter.parse("Quantity")


def test_jsonl_gzip_and_parquet_files_are_read_row_by_row(tmp_path):
    records = [{"u": "1", "i": "a", "t": "2026-01-05T10:00:00"}, {"u": "2", "i": "b", "t": "x"}]
    jsonl = tmp_path / "events.data"  # the name says nothing: gzip is told by its bytes
    with gzip.open(jsonl, "wt") as handle:
        handle.write(json.dumps(records[0]) + "\n\n[1, 2]\n" + json.dumps(records[1]) + "\n")
    rows = list(TabularFile(jsonl, "jsonl").rows())
    assert TabularFile(jsonl, "jsonl").columns == ["u", "i", "t"]
    assert [r.number for r in rows] == [1, 3, 4]
    assert rows[1].problem == "a JSON list, not an object"
    parquet = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    assert [r.values for r in TabularFile(parquet, "parquet").rows()] == records


def test_a_missing_file_or_encoding_is_one_clear_error(tmp_path):
    with pytest.raises(StreamrecError, match="no such file"):
        TabularFile(tmp_path / "absent.csv", "csv")
    (tmp_path / "a.csv").write_text("u,i\n1,2\n")
    with pytest.raises(StreamrecError, match="not a known encoding"):
        TabularFile(tmp_path / "a.csv", "csv", encoding="klingon")
