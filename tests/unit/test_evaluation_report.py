"""The HTML report: intervals, the data window, the settings, and empty buckets left empty."""

import json

from streamrec.training.report import report_files


def _result():
    figures = {
        "mrr": 0.1,
        "recall@10": 0.2,
        "ndcg@10": 0.15,
        "coverage@10": 0.5,
        "popularity_rank@10": 30.0,
        "intervals": {"recall@10": [0.18, 0.22], "ndcg@10": [0.13, 0.17], "mrr": [0.09, 0.11]},
        "curve": {"1": 0.05, "10": 0.2},
        "recall@10_by_history_length": {"0-0": None, "1-2": 0.25},
        "recall@10_by_target_popularity_decile": {"1": 0.3, "2": None},
    }
    return {
        "protocol": "temporal",
        "exclude_seen": False,
        "ks": [10],
        "queries": 100,
        "catalog_items": 50,
        "models": {"version 2": figures, "ease": figures},
        "differences": {
            "of": "version 2",
            "against": {"ease": {"recall@10": {"difference": 0.0, "interval": [-0.01, 0.01]}}},
        },
        "window": {
            "start_date": "2011-01-01",
            "end_date": "2011-12-09",
            "examples": 1000,
            "holdout_from_timestamp": 1_320_000_000_000,
            "holdout_examples": 100,
        },
        "settings": {"version 2": {"temperature": 0.05, "history_length": 100}},
    }


def test_the_report_names_window_settings_and_intervals_and_leaves_empty_buckets_empty():
    files = report_files(_result(), "title")
    assert json.loads(files["evaluation.json"]) == _result()
    page = files["report.html"]
    assert "Data: examples of 2011-01-01 to 2011-12-09" in page
    assert "held out from 2011-10-30T18:40+00:00 on" in page
    assert "version 2: history_length=100, temperature=0.05" in page
    assert "0.18 to 0.22" in page and "-0.0100 to +0.0100" in page
    # Two empty buckets per model, two models: said, not drawn as 0.
    assert page.count("no queries") == 4
