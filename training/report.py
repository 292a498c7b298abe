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
from datetime import UTC, datetime

import numpy as np
from matplotlib.figure import Figure

_METRICS = ("recall", "ndcg", "coverage", "popularity_rank")


REPORT_FILES = ("evaluation.json", "report.html")


def report_files(result: dict, title: str) -> dict[str, str]:
    """The report's files by name (:data:`REPORT_FILES`): the figures as JSON, and a page."""
    models = result["models"]
    k = min(result["ks"])
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Protocol {html.escape(result['protocol'])}, {result['queries']} queries, "
        f"{result['catalog_items']} items ranked in full (ties against the model)"
        f"{', seen items excluded' if result['exclude_seen'] else ''}.</p>",
        _window(result.get("window")),
        _settings(result.get("settings", {})),
        _table(models, result["ks"]),
        "<p>Intervals: 95%, from 1000 resamples of the users (each with all their queries).</p>",
        _differences(result.get("differences")),
        _image(_lines(models), "Recall by cut-off K"),
        _image(_bars(models, f"recall@{k}_by_history_length", "history length"), "By history"),
        _buckets(models, f"recall@{k}_by_history_length", "history length"),
        _image(
            _bars(models, f"recall@{k}_by_target_popularity_decile", "target popularity decile"),
            "By popularity",
        ),
        _buckets(models, f"recall@{k}_by_target_popularity_decile", "popularity decile"),
    ]
    page = (
        "<!doctype html><meta charset=utf-8><title>streamrec evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{padding:.2em .6em;text-align:right}</style>" + "\n".join(sections)
    )
    return dict(zip(REPORT_FILES, (json.dumps(result, indent=2), page), strict=True))


def _table(models: dict, ks: list[int]) -> str:
    columns = ["mrr"] + [f"{m}@{k}" for k in ks for m in _METRICS]
    head = "".join(f"<th>{c}</th>" for c in ["model", *columns])
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{_cell(figures, c)}</td>" for c in columns)
        + "</tr>"
        for name, figures in models.items()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _cell(figures: dict, metric: str) -> str:
    if figures.get(metric) is None:
        return ""
    interval = figures.get("intervals", {}).get(metric)
    shown = f"{figures[metric]:.4g}"
    if interval:
        shown += f"<br><small>{interval[0]:.4g} to {interval[1]:.4g}</small>"
    return shown


def _buckets(models: dict, key: str, label: str) -> str:
    """A plot's figures as a table; a bucket without queries says so instead of showing 0."""
    names = list(next(iter(models.values()))[key])
    head = "".join(f"<th>{html.escape(name)}</th>" for name in [label, *names])
    rows = "".join(
        f"<tr><th>{html.escape(model)}</th>"
        + "".join(
            "<td><small>no queries</small></td>" if value is None else f"<td>{value:.4g}</td>"
            for value in figures[key].values()
        )
        + "</tr>"
        for model, figures in models.items()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _window(window: dict | None) -> str:
    if not window:
        return ""
    return (
        f"<p>Data: examples of {window['start_date']} to {window['end_date']} "
        f"({window['examples']} examples); held out from "
        f"{_utc(window['holdout_from_timestamp'])} on ({window['holdout_examples']} examples)."
        "</p>"
    )


def _utc(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="minutes")


def _settings(settings: dict) -> str:
    """Each version's training settings, one line per version."""
    lines = "".join(
        f"<li>{html.escape(name)}: "
        + html.escape(", ".join(f"{key}={value}" for key, value in sorted(values.items())))
        + "</li>"
        for name, values in settings.items()
    )
    return f"<p>Settings:</p><ul>{lines}</ul>" if lines else ""


def _differences(differences: dict | None) -> str:
    if not differences or not differences["against"]:
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(differences['of'])} minus {html.escape(other)}</th>"
        + "".join(
            f"<td>{value['difference']:+.4f}"
            + (
                f"<br><small>{value['interval'][0]:+.4f} to {value['interval'][1]:+.4f}</small>"
                if value["interval"]
                else ""
            )
            + "</td>"
            for value in figures.values()
        )
        + "</tr>"
        for other, figures in differences["against"].items()
    )
    first = next(iter(differences["against"].values()))
    head = "".join(f"<th>{html.escape(metric)}</th>" for metric in ["difference", *first])
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
        # An empty bucket (no query there) has no bar, not a bar at 0.
        values = [np.nan if v is None else v for v in groups.values()]
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
