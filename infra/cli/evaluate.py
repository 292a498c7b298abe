"""``streamrec evaluate``: the offline evaluation report that decides which model serves."""

from __future__ import annotations

import argparse
import json

from streamrec.infra.cli.runtime import prepare_tensorflow
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_model_registry
from streamrec.infra.storage.adapters.storage_root import StorageRoot

PROTOCOLS = ("temporal", "leave-last-out")


def add_commands(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="rank the whole catalog for held-out examples; compare versions and baselines",
    )
    which = evaluate.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="the version to evaluate (default: current)")
    which.add_argument("--candidate", type=int, help="a version to compare with --incumbent")
    evaluate.add_argument("--incumbent", type=int, help="the version --candidate must beat")
    evaluate.add_argument("--protocol", choices=PROTOCOLS, default="temporal")
    evaluate.add_argument("--k", default="10,50", help="cut-offs, comma-separated (10,50)")
    evaluate.add_argument(
        "--exclude-seen",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop each user's history before ranking, a seen target counting as a miss "
        "(default: as serving does, serving.exclude_seen)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument(
        "--report",
        metavar="DIR",
        help="directory or URL for the report (default: beside the version)",
    )
    evaluate.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace, config: Config) -> int:
    ks = _cutoffs(args.k)
    if (args.candidate is None) != (args.incumbent is None):
        raise StreamrecError("--candidate and --incumbent go together")
    registry = open_model_registry(config)
    if args.candidate is not None:
        versions = [registry.version(args.candidate), registry.version(args.incumbent)]
    elif args.version is not None:
        versions = [registry.version(args.version)]
    else:
        current = registry.current()
        if current is None:
            raise StreamrecError("no version serves yet; name one with --version")
        versions = [current]

    prepare_tensorflow(args.verbose)
    from streamrec.training.report import report_files
    from streamrec.training.version_evaluation import evaluate_versions

    if args.exclude_seen is None:
        args.exclude_seen = config.serving.exclude_seen
    result = evaluate_versions(config, versions, args.protocol, ks, args.exclude_seen)
    title = " vs ".join(f"version {v.version}" for v in versions)
    files = report_files(result, f"streamrec evaluation: {title}")
    where = StorageRoot(args.report or _default_report(config, versions, args))
    for name, text in files.items():  # the page last: it is what people open
        where.publish(name, text.encode())
    path = where.full("report.html")
    if not args.json:
        _print_table(result, ks)
    print(f"report: {path}")
    if args.json:
        print(json.dumps(_summary(result)))  # the last line, for scripts
    return 0


def _default_report(config: Config, versions: list, args: argparse.Namespace) -> str:
    """Beside the first version, in the model directory (a bucket's, when it is a URL)."""
    name = f"{versions[0].version}/evaluation/{_report_name(args, versions)}"
    return f"{config.model_location}/{name}"


def _report_name(args: argparse.Namespace, versions: list) -> str:
    name = args.protocol + ("-unseen" if args.exclude_seen else "")
    return name + "".join(f"-vs-{v.version}" for v in versions[1:])


def _cutoffs(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise StreamrecError(f"--k {text!r}: expected cut-offs like 10,50") from None
    if not ks or ks[0] < 1:
        raise StreamrecError(f"--k {text!r}: cut-offs must be at least 1")
    return ks


def _summary(result: dict) -> dict:
    """The figures without the per-bucket breakdowns (they are in the report's JSON)."""
    models = {
        name: {k: v for k, v in figures.items() if not isinstance(v, dict) or k == "intervals"}
        for name, figures in result["models"].items()
    }
    return {**{k: v for k, v in result.items() if k != "models"}, "models": models}


def _print_table(result: dict, ks: list[int]) -> None:
    columns = ["mrr", *(f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "coverage"))]
    print(f"{result['protocol']}: {result['queries']} queries, {result['catalog_items']} items")
    print(f"{'model':<16}" + "".join(f"{c:>14}" for c in columns))
    for name, figures in result["models"].items():
        print(f"{name:<16}" + "".join(f"{figures[c]:>14.4f}" for c in columns))
    print("95% intervals (users resampled):")
    for name, figures in result["models"].items():
        print(f"{name:<16}" + "".join(_interval(figures["intervals"].get(c)) for c in columns))
    differences = result["differences"]
    for other, figures in differences["against"].items():
        recall = f"recall@{ks[0]}"
        print(
            f"{differences['of']} - {other}: {recall} {figures[recall]['difference']:+.4f}"
            f" (95% interval{_interval(figures[recall]['interval'], signed=True)})"
        )


def _interval(interval: list[float] | None, signed: bool = False) -> str:
    if interval is None:
        return " none" if signed else f"{'':>14}"
    if signed:
        return f" {interval[0]:+.4f} to {interval[1]:+.4f}"
    return f" {interval[0]:.4f}-{interval[1]:.4f}"
