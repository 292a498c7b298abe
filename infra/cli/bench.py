"""``streamrec bench ...``: measurements on this machine, each against a baseline in the same run.

Every benchmark prints its progress, then its results as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json

from streamrec.infra.config import Config
from streamrec.infra.errors import StreamrecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure throughput and latency on this machine")
    kinds = bench.add_subparsers(dest="kind", metavar="KIND", required=True)
    ingest = kinds.add_parser("ingest", help="publishing and the feature job vs raw Kafka")
    ingest.add_argument("--events", type=int, default=1_000_000)
    ingest.add_argument("--latency-seconds", type=float, default=20.0)
    ingest.add_argument("--latency-rate", type=int, default=2000, help="events/s meanwhile")
    ingest.add_argument("--json", action="store_true", help="only the JSON line on stdout")
    ingest.set_defaults(handler=_ingest)


def _ingest(args: argparse.Namespace, config: Config) -> int:
    from streamrec.infra.cli.ingest_benchmark import IngestBenchmark, run_ingest_benchmark

    if args.events < 1000 or args.latency_seconds <= 0 or args.latency_rate < 1:
        raise StreamrecError("need --events >= 1000, --latency-seconds > 0, --latency-rate >= 1")
    bench = IngestBenchmark(args.events, args.latency_seconds, args.latency_rate)
    results = run_ingest_benchmark(config, bench, say=_say_unless(args.json))
    print(json.dumps(results))
    return 0


def _say_unless(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            print(f"==> {message}", flush=True)

    return say
