"""The one ``streamrec`` command line, with one module per process role.

Each role module (:mod:`.stack`, :mod:`.topics`, :mod:`.events`, :mod:`.items`,
:mod:`.features`, :mod:`.train`, :mod:`.evaluate`, :mod:`.models`, :mod:`.serve`, :mod:`.demo`,
:mod:`.bench`) registers its subcommands and imports its stage only when the subcommand runs, so
``streamrec stack status`` does not pay for importing TensorFlow or PySpark.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from streamrec.infra.cli import (
    bench,
    demo,
    evaluate,
    events,
    features,
    items,
    models,
    serve,
    stack,
    topics,
    train,
)
from streamrec.infra.cli.runtime import configure_logging
from streamrec.infra.core.config import Config, load_config, render_toml
from streamrec.infra.core.errors import StreamrecError

ROLES = (stack, topics, events, items, features, train, evaluate, models, serve, demo, bench)


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as a single line naming the problem, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="streamrec",
        description="Streaming recommendations: events -> Kafka -> Spark -> TFRS -> gRPC.",
    )
    parser.add_argument("--config", metavar="PATH", help="TOML config file (or STREAMREC_CONFIG)")
    parser.add_argument(
        "--verbose", action="store_true", help="show info logs, TensorFlow's included"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    config_cmd = commands.add_parser("config", help="print the effective configuration")
    config_cmd.set_defaults(handler=_print_config)
    for role in ROLES:
        role.add_commands(commands)
    return parser


def _print_config(args: argparse.Namespace, config: Config) -> int:
    sys.stdout.write(render_toml(config, redact_secrets=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        config = load_config(args.config)
        return int(args.handler(args, config) or 0)
    except StreamrecError as exc:
        print(f"streamrec: error: {exc}", file=sys.stderr)
        if args.verbose and exc.__cause__ is not None:  # the one line stays one line otherwise
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamrec: interrupted", file=sys.stderr)
        return 130
