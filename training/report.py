"""The HTML report of an evaluation: the JSON's figures as a table and three plots.

Plots: recall by cut-off K; recall by the length of the user's history (do we help new
users?); recall by the popularity decile of the target (do we only find the head?). Images
are embedded, so the report is one file that can be mailed or attached to a review.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from matplotlib.figure import Figure

_METRICS = ("recall", "ndcg", "coverage", "popularity_rank")


def write_report(result: dict, directory: Path, title: str) -> Path:
    """Writes ``report.html`` and ``evaluation.json`` into ``directory``; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "evaluation.json").write_text(json.dumps(result, indent=2))
    models = result["models"]
    k = min(result["ks"])
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Protocol {html.escape(result['protocol'])}, {result['queries']} queries, "
        f"{result['catalog_items']} items ranked in full (ties against the model)"
        f"{', seen items excluded' if result['exclude_seen'] else ''}.</p>",
        _table(models, result["ks"]),
        _image(_lines(models), "Recall by cut-off K"),
        _image(_bars(models, f"recall@{k}_by_history_length", "history length"), "By history"),
        _image(
            _bars(models, f"recall@{k}_by_target_popularity_decile", "target popularity decile"),
            "By popularity",
        ),
    ]
    path = directory / "report.html"
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>streamrec evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{padding:.2em .6em;text-align:right}</style>" + "\n".join(sections)
    )
    return path


def _table(models: dict, ks: list[int]) -> str:
    columns = ["mrr"] + [f"{m}@{k}" for k in ks for m in _METRICS]
    head = "".join(f"<th>{c}</th>" for c in ["model", *columns])
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{figures.get(c, 0):.4g}</td>" for c in columns)
        + "</tr>"
        for name, figures in models.items()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _lines(models: dict) -> Figure:
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for name, figures in models.items():
        curve = figures["curve"]
        axes.plot([int(k) for k in curve], list(curve.values()), marker="o", label=name)
    axes.set(xscale="log", xlabel="K", ylabel="recall@K")
    axes.legend()
    return figure


def _bars(models: dict, key: str, label: str) -> Figure:
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    width = 0.8 / max(1, len(models))
    for n, (name, figures) in enumerate(models.items()):
        groups = figures[key]
        values = [v or 0.0 for v in groups.values()]
        axes.bar([i + n * width for i in range(len(values))], values, width, label=name)
        axes.set_xticks([i + 0.4 - width / 2 for i in range(len(values))], list(groups))
    axes.set(xlabel=label, ylabel=key.split("_by_")[0])
    axes.legend()
    return figure


def _image(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'
