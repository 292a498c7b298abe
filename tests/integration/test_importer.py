"""`streamrec events import` against the real broker, on real retail data."""

import json

import pytest

from streamrec.infra.storage import open_event_bus
from streamrec.ingest.importer import import_file
from streamrec.ingest.row_mapping import RowFilter, RowMapping
from streamrec.ingest.tabular_files import TabularFile
from tests.conftest import RETAIL_EXCERPT, shared_dataset

RETAIL = {"user_id": "CustomerID", "item_id": "StockCode", "timestamp": "InvoiceDate"}
NOT_CANCELLED = (RowFilter.parse("Quantity>0"), RowFilter.parse("InvoiceNo!~^C"))


def _mapping(timestamp_format):
    return RowMapping(RETAIL, "purchase", timestamp_format, where=NOT_CANCELLED)


def _published(config):
    return sum(open_event_bus(config).end_offsets(config.kafka.events_topic).values())


def test_the_retail_excerpt_imports_its_purchases_and_reports_the_rest(config, tmp_path):
    report_file = tmp_path / "rejected.jsonl"
    source = TabularFile(RETAIL_EXCERPT, "csv")
    report = import_file(config, source, _mapping("%d/%m/%Y %H:%M"), report_file)
    summary = report.summary()
    assert summary["rows"] == 3001
    assert summary["rejected_by_reason"] == {
        "no user_id": 1081,
        "excluded by --where Quantity>0": 27,  # the cancellations, and their like
    }
    assert summary["imported"] == 3001 - 1108 == _published(config)
    rejected = [json.loads(line) for line in report_file.read_text().splitlines()]
    assert len(rejected) == 1108
    assert {r["kind"] for r in rejected} == {"no user_id", "excluded by --where Quantity>0"}
    assert rejected[0]["values"]["InvoiceNo"]  # the whole row, to fix it by

    again = import_file(config, source, _mapping("%d/%m/%Y %H:%M"), report_file)
    assert again.already_complete and again.imported == 0
    assert _published(config) == summary["imported"]  # re-importing published nothing


def test_an_interrupted_import_resumes_after_its_last_checkpoint(config, tmp_path, monkeypatch):
    monkeypatch.setattr("streamrec.ingest.importer.CHECKPOINT_ROWS", 1000)
    source = TabularFile(RETAIL_EXCERPT, "csv")

    def crash_after_first_checkpoint(report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(
            config, source, _mapping("%d/%m/%Y %H:%M"), tmp_path / "r.jsonl",
            progress=crash_after_first_checkpoint,
        )  # fmt: skip
    first_part = _published(config)
    resumed = import_file(config, source, _mapping("%d/%m/%Y %H:%M"), tmp_path / "r.jsonl")
    assert resumed.skipped == 1000
    assert first_part + resumed.imported == _published(config) == 3001 - 1108


@pytest.mark.slow
def test_the_full_retail_year_imports_about_398k_purchase_events(config, tmp_path):
    source = TabularFile(shared_dataset("online-retail-2010-12-to-2011-12.csv.gz"), "csv")
    summary = import_file(config, source, _mapping("iso"), tmp_path / "year.jsonl").summary()
    assert summary["rows"] == 541_909
    assert summary["imported"] == 397_924 == _published(config)
    assert summary["rejected_by_reason"]["no user_id"] == 133_361
    assert summary["rows_per_s"] > 0


def test_the_import_command_fails_in_one_line_on_an_unknown_column(config, run_cli):
    command = ["events", "import", str(RETAIL_EXCERPT), "--format", "csv", "--event-type", "view"]
    command += ["--map", "user_id=Customer,item_id=StockCode,timestamp=InvoiceDate"]
    result = run_cli.run(config, *command)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"streamrec: error: {RETAIL_EXCERPT} has no column 'Customer' (it has: InvoiceNo, "
        "StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country)"
    ]
