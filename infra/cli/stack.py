"""``streamrec stack up | down | status``: the embedded broker and Redis for development."""

from __future__ import annotations

import argparse

from streamrec.infra.core.config import Config
from streamrec.infra.devstack.stack import LocalStack


def add_commands(commands: argparse._SubParsersAction) -> None:
    stack = commands.add_parser("stack", help="run the embedded Kafka broker and Redis")
    actions = stack.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("up", help="start the embedded services (idempotent)").set_defaults(
        handler=_up
    )
    actions.add_parser("down", help="stop the embedded services").set_defaults(handler=_down)
    actions.add_parser("status", help="show each service").set_defaults(handler=_status)


def _up(args: argparse.Namespace, config: Config) -> int:
    stack = LocalStack(config)
    started = stack.up()
    for status in stack.status():
        note = " (started)" if status.name in started else ""
        print(status.describe() + note)
    return 0


def _down(args: argparse.Namespace, config: Config) -> int:
    stopped = LocalStack(config).down()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    statuses = LocalStack(config).status()
    for status in statuses:
        print(status.describe())
    return 0 if all(s.answering for s in statuses) else 3
