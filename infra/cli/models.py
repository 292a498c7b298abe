"""``streamrec models``: the registry of exported versions and the ``current`` pointer."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_model_registry


def add_commands(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list, inspect, promote and roll back versions")
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every version, its metric and whether it serves")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="a version's metadata, as JSON")
    show.add_argument("version", type=int)
    show.set_defaults(handler=_show)
    promote = actions.add_parser("promote", help="make a version serve (checksums verified)")
    promote.add_argument("version", type=int)
    promote.add_argument("--reason", default="promoted by hand")
    promote.set_defaults(handler=_promote)
    rollback = actions.add_parser("rollback", help="serve the version that served before")
    rollback.set_defaults(handler=_rollback)
    history = actions.add_parser("history", help="every move of the current pointer")
    history.set_defaults(handler=_history)


def _list(args: argparse.Namespace, config: Config) -> int:
    registry = open_model_registry(config)
    current = registry.current()
    print(f"{'':2}{'version':>8}  {'created':<20}{'model':<24}{'metric':>18}  promotion")
    for version in registry.versions():
        metadata = version.metadata()
        marker = "*" if current and current.version == version.version else ""
        metric = metadata.get("parameters", {}).get("promotion_metric", "")
        value = metadata.get("evaluation", {}).get("models", {}).get("candidate", {}).get(metric)
        shown = f"{metric} {value:.4f}" if value is not None else "-"
        verdict = metadata.get("promotion", {}).get("reason", "")
        print(
            f"{marker:2}{version.version:>8}  {metadata.get('created_at', ''):<20.19}"
            f"{metadata.get('model', ''):<24}{shown:>18}  {verdict}"
        )
    return 0


def _show(args: argparse.Namespace, config: Config) -> int:
    version = open_model_registry(config).version(args.version)
    print(json.dumps(version.metadata(), indent=2))
    return 0


def _promote(args: argparse.Namespace, config: Config) -> int:
    registry = open_model_registry(config)
    registry.promote(args.version, args.reason)
    print(f"version {args.version} serves now")
    return 0


def _rollback(args: argparse.Namespace, config: Config) -> int:
    version = open_model_registry(config).rollback()
    print(f"rolled back: version {version.version} serves now")
    return 0


def _history(args: argparse.Namespace, config: Config) -> int:
    for promotion in open_model_registry(config).promotions():
        when = datetime.fromtimestamp(promotion.at_ms / 1000, UTC).isoformat(timespec="seconds")
        print(f"{when}  version {promotion.version}: {promotion.reason}")
    return 0
