"""``streamrec demo``: the main job, what ``make demo`` runs."""

from __future__ import annotations

import argparse

from infra.config import Config


def add_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole pipeline on the embedded stack and score it"
    )
    defaults = _defaults()
    demo.add_argument("--users", type=int, default=defaults.users)
    demo.add_argument("--items", type=int, default=defaults.items)
    demo.add_argument("--events", type=int, default=defaults.events)
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument("--epochs", type=int, default=0, help="override training.epochs")
    demo.set_defaults(handler=_demo)


def _defaults():
    from infra.demo import DemoSize

    return DemoSize()


def _demo(args: argparse.Namespace, config: Config) -> int:
    from infra.demo import DemoSize, run_demo

    size = DemoSize(
        users=args.users, items=args.items, events=args.events, seed=args.seed, epochs=args.epochs
    )
    summary = run_demo(config, size)
    print(f"\nsummary: {summary['run_dir']}/summary.json")
    return 0
