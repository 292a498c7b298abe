"""``streamrec items import``: the item catalog, from a catalog export to the items topic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamrec.infra.cli.arguments import add_tabular_file_arguments, field_map
from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_event_bus


def add_commands(commands: argparse._SubParsersAction) -> None:
    items = commands.add_parser("items", help="the item catalog")
    actions = items.add_subparsers(dest="action", metavar="ACTION", required=True)
    imports = actions.add_parser(
        "import", help="publish item records from a CSV, JSON Lines or Parquet file"
    )
    add_tabular_file_arguments(imports, "item_id=COL[,categories=COL,available=COL,created_at=COL]")
    imports.add_argument("--category-separator", default="|", help="between categories (|)")
    imports.add_argument("--timestamp-format", default="iso", help="of created_at (see events)")
    imports.add_argument("--encoding", default="utf-8")
    imports.add_argument("--report", metavar="FILE", help="rejected rows (JSON Lines)")
    imports.set_defaults(handler=_import)


def _import(args: argparse.Namespace, config: Config) -> int:
    from streamrec.ingest.item_import import ItemMapping, import_items
    from streamrec.ingest.tabular_files import TabularFile

    mapping = ItemMapping(field_map(args.map), args.category_separator, args.timestamp_format)
    source = TabularFile(args.file, args.format, args.encoding)
    name = Path(args.file).name.split(".")[0]
    report = (
        Path(args.report)
        if args.report
        else config.state_dir / "imports" / f"{name}.items.rejected.jsonl"
    )
    open_event_bus(config).ping()
    print(json.dumps(import_items(config, source, mapping, report)))
    return 0
