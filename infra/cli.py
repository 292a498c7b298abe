"""The one ``streamrec`` command line: each stage registers its own subcommands here.

Stage modules are imported only when their subcommand runs, so ``streamrec stack status``
does not pay for importing TensorFlow or PySpark.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from infra.config import Config, load_config, render_toml
from infra.errors import StreamrecError

Handler = Callable[[argparse.Namespace, Config], int | None]


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    config_cmd = commands.add_parser("config", help="print the effective configuration")
    config_cmd.set_defaults(handler=_print_config)

    from features.cli import add_commands as add_features
    from infra.demo_cli import add_commands as add_demo
    from infra.stack_cli import add_commands as add_stack
    from ingest.cli import add_commands as add_ingest
    from serving.cli import add_commands as add_serving
    from training.cli import add_commands as add_training

    for add in (add_stack, add_ingest, add_features, add_training, add_serving, add_demo):
        add(commands)
    return parser


def _print_config(args: argparse.Namespace, config: Config) -> int:
    sys.stdout.write(render_toml(config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # it logs every failed connect attempt
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        return int(args.handler(args, config) or 0)
    except StreamrecError as exc:
        print(f"streamrec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
