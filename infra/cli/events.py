"""``streamrec events generate | publish | serve``: synthetic streams, files, the event API."""

from __future__ import annotations

import argparse
import sys

from streamrec.infra.cli.arguments import add_tabular_file_arguments, field_map
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_event_bus


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
    generate.add_argument(
        "--items-out", metavar="FILE", help="also the item catalog, a CSV for `items import`"
    )
    generate.set_defaults(handler=_generate)

    publish = actions.add_parser("publish", help="send a JSON Lines event file to Kafka")
    publish.add_argument("file", metavar="FILE")
    publish.add_argument("--no-progress", action="store_true")
    publish.set_defaults(handler=_publish)

    add_import_command(actions)

    serve = actions.add_parser(
        "serve", help="run the event API server (gRPC LogEvents) for backends without Kafka"
    )
    serve.set_defaults(handler=_serve)


def _generate(args: argparse.Namespace, config: Config) -> int:
    from streamrec.ingest.event_file import write_events
    from streamrec.ingest.item_import import CATALOG_CSV_MAP, write_item_csv
    from streamrec.ingest.synthetic import SyntheticSpec, generate, generate_items

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
        raise StreamrecError(f"events generate: {exc}") from exc
    written = write_events(args.out, generate(spec))
    print(f"wrote {written} events for {spec.users} users and {spec.items} items to {args.out}")
    if args.items_out:
        write_item_csv(args.items_out, generate_items(spec))
        print(
            f"wrote the catalog to {args.items_out}; import it with `streamrec items import "
            f"{args.items_out} --format csv --map {CATALOG_CSV_MAP}`"
        )
    return 0


def _publish(args: argparse.Namespace, config: Config) -> int:
    from streamrec.ingest.publisher import publish_file

    show = not args.no_progress and sys.stderr.isatty()
    sent = publish_file(config, args.file, progress=show)
    print(f"published {sent} events to {config.kafka.events_topic!r} at {config.kafka_bootstrap}")
    return 0


def add_import_command(actions: argparse._SubParsersAction) -> None:
    imports = actions.add_parser(
        "import", help="publish history from a CSV, JSON Lines or Parquet file (gzip or plain)"
    )
    add_tabular_file_arguments(
        imports,
        "user_id=COL,item_id=COL,timestamp=COL[,event_type=COL][,context.KEY=COL...]: "
        "context.KEY makes the column the event's context entry KEY (device, country...), "
        "which the query tower reads as the request's context",
    )
    imports.add_argument("--event-type", help="the event type of every row (or map a column)")
    imports.add_argument(
        "--timestamp-format",
        default="iso",
        help="iso (default), epoch_ms, epoch_s or a strptime pattern such as '%%d/%%m/%%Y %%H:%%M'",
    )
    imports.add_argument("--event-id-from", metavar="COLS", help="columns that identify a row")
    imports.add_argument(
        "--where", action="append", default=[], metavar="EXPR", help="keep rows where COL OP VALUE"
    )
    imports.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8)")
    imports.add_argument("--report", metavar="FILE", help="rejected rows (JSON Lines)")
    imports.set_defaults(handler=_import)


def _import(args: argparse.Namespace, config: Config) -> int:
    import json
    from pathlib import Path

    from streamrec.ingest.importer import import_file
    from streamrec.ingest.row_mapping import RowFilter, RowMapping
    from streamrec.ingest.tabular_files import TabularFile

    mapping = RowMapping(
        columns=field_map(args.map),
        event_type=args.event_type,
        timestamp_format=args.timestamp_format,
        event_id_from=tuple(c for c in (args.event_id_from or "").split(",") if c),
        where=tuple(RowFilter.parse(text) for text in args.where),
    )
    source = TabularFile(args.file, args.format, args.encoding)
    name = Path(args.file).name.split(".")[0]
    report_file = (
        Path(args.report)
        if args.report
        else config.state_dir / "imports" / f"{name}.rejected.jsonl"
    )
    open_event_bus(config).ping()
    show = _progress if sys.stderr.isatty() else (lambda _: None)
    report = import_file(config, source, mapping, report_file, progress=show)
    print(json.dumps(report.summary()))
    return 0


def _progress(report: object) -> None:
    print(f"  {report.rows} rows, {report.imported} events so far", file=sys.stderr, flush=True)


def _serve(args: argparse.Namespace, config: Config) -> int:
    from streamrec.ingest.event_service import serve_forever

    serve_forever(config, say=_say)
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
