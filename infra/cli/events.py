"""``streamrec events generate | publish | serve``: synthetic streams, files, the event API."""

from __future__ import annotations

import argparse
import sys

from streamrec.infra.config import Config
from streamrec.infra.errors import StreamrecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    events = commands.add_parser("events", help="generate and publish events")
    actions = events.add_subparsers(dest="action", metavar="ACTION", required=True)

    generate = actions.add_parser(
        "generate", help="write a synthetic stream with planted structure"
    )
    generate.add_argument("--users", type=int, required=True)
    generate.add_argument("--items", type=int, required=True)
    generate.add_argument("--events", type=int, required=True)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--groups", type=int, default=0, help="item groups (0: items/40)")
    generate.add_argument("--days", type=int, default=14)
    generate.add_argument("--out", required=True, metavar="FILE", help="JSON Lines output file")
    generate.set_defaults(handler=_generate)

    publish = actions.add_parser("publish", help="send a JSON Lines event file to Kafka")
    publish.add_argument("file", metavar="FILE")
    publish.add_argument("--no-progress", action="store_true")
    publish.set_defaults(handler=_publish)

    serve = actions.add_parser(
        "serve", help="run the event API server (gRPC LogEvents) for backends without Kafka"
    )
    serve.set_defaults(handler=_serve)


def _generate(args: argparse.Namespace, config: Config) -> int:
    from streamrec.ingest.event_file import write_events
    from streamrec.ingest.synthetic import SyntheticSpec, generate

    try:
        spec = SyntheticSpec(
            users=args.users,
            items=args.items,
            events=args.events,
            seed=args.seed,
            groups=args.groups,
            days=args.days,
        )
    except ValueError as exc:
        raise StreamrecError(f"events generate: {exc}") from None
    written = write_events(args.out, generate(spec))
    print(f"wrote {written} events for {spec.users} users and {spec.items} items to {args.out}")
    return 0


def _publish(args: argparse.Namespace, config: Config) -> int:
    from streamrec.ingest.publisher import publish_file

    show = not args.no_progress and sys.stderr.isatty()
    sent = publish_file(config, args.file, progress=show)
    print(f"published {sent} events to {config.kafka.events_topic!r} at {config.kafka_bootstrap}")
    return 0


def _serve(args: argparse.Namespace, config: Config) -> int:
    from streamrec.ingest.event_service import serve_forever

    serve_forever(config)
    return 0
