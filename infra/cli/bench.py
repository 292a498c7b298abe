"""``streamrec bench ...``: measurements on this machine, each against a baseline in the same run.

Every benchmark prints its progress, then its results as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json

from streamrec.infra.cli.runtime import prepare_tensorflow
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure throughput and latency on this machine")
    kinds = bench.add_subparsers(dest="kind", metavar="KIND", required=True)
    ingest = kinds.add_parser("ingest", help="publishing and the feature job vs raw Kafka")
    ingest.add_argument("--events", type=int, default=1_000_000)
    ingest.add_argument("--latency-seconds", type=float, default=20.0)
    ingest.add_argument("--latency-rate", type=int, default=2000, help="events/s meanwhile")
    ingest.add_argument(
        "--order",
        choices=("time", "user"),
        default="time",
        help="publish in time order, or in user blocks, heavy users first (a warehouse dump)",
    )
    ingest.add_argument("--json", action="store_true", help="only the JSON line on stdout")
    ingest.set_defaults(handler=_ingest)
    train = kinds.add_parser("train", help="the trainer's examples/s vs a bare Keras loop")
    train.add_argument("--events", type=int, default=600_000)
    train.add_argument("--users", type=int, default=20_000)
    train.add_argument("--items", type=int, default=10_000)
    train.add_argument("--epochs", type=int, default=3, help="the first is not timed")
    train.add_argument("--json", action="store_true", help="only the JSON line on stdout")
    train.set_defaults(handler=_train)
    serve = kinds.add_parser("serve", help="the ranking service under load vs bare gRPC and Redis")
    serve.add_argument("--items", type=int, default=100_000, help="catalog size served")
    serve.add_argument("--concurrency", type=int, default=8)
    serve.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    serve.add_argument("--users", type=int, default=5_000)
    serve.add_argument("--events", type=int, default=100_000)
    serve.add_argument("--epochs", type=int, default=3)
    serve.add_argument("--freshness-probes", type=int, default=20)
    serve.add_argument("--json", action="store_true", help="only the JSON line on stdout")
    serve.set_defaults(handler=_serve)
    quality = kinds.add_parser(
        "quality", help="the training recipe one change at a time, against EASE and popularity"
    )
    quality.add_argument(
        "--steps", default="", help="recipe steps to run beside the default, comma-separated"
    )
    quality.add_argument("--json", action="store_true", help="only the JSON line on stdout")
    quality.set_defaults(handler=_quality)


def _ingest(args: argparse.Namespace, config: Config) -> int:
    from streamrec.infra.bench.ingest import IngestBenchmark, run_ingest_benchmark

    if args.events < 1000 or args.latency_seconds <= 0 or args.latency_rate < 1:
        raise StreamrecError("need --events >= 1000, --latency-seconds > 0, --latency-rate >= 1")
    bench = IngestBenchmark(args.events, args.latency_seconds, args.latency_rate, args.order)
    results = run_ingest_benchmark(config, bench, say=_say_unless(args.json))
    print(json.dumps(results))
    return 0


def _train(args: argparse.Namespace, config: Config) -> int:
    if args.epochs < 2 or args.users < 1 or args.items < 2:
        raise StreamrecError("need --epochs >= 2 (the first is not timed), --users, --items >= 2")
    if args.events < 3 * args.users:
        raise StreamrecError("need --events >= 3 x --users")
    prepare_tensorflow(args.verbose)
    from streamrec.infra.bench.train import TrainBenchmark, run_train_benchmark

    bench = TrainBenchmark(args.users, args.items, args.events, args.epochs)
    print(json.dumps(run_train_benchmark(config, bench, say=_say_unless(args.json))))
    return 0


def _serve(args: argparse.Namespace, config: Config) -> int:
    if args.items < 1000 or args.concurrency < 1 or args.seconds <= 0:
        raise StreamrecError("need --items >= 1000, --concurrency >= 1 and --seconds > 0")
    if args.events < 3 * args.users or args.epochs < 1 or args.freshness_probes < 1:
        raise StreamrecError("need --events >= 3 x --users, --epochs >= 1, --freshness-probes >= 1")
    prepare_tensorflow(args.verbose)
    from streamrec.infra.bench.serve import ServeBenchmark, run_serve_benchmark

    bench = ServeBenchmark(
        args.items, args.concurrency, args.seconds, args.users, args.events, args.epochs,
        args.freshness_probes,
    )  # fmt: skip
    print(json.dumps(run_serve_benchmark(config, bench, say=_say_unless(args.json))))
    return 0


def _quality(args: argparse.Namespace, config: Config) -> int:
    from streamrec.infra.bench.recipe_steps import steps_named

    steps = steps_named([name.strip() for name in args.steps.split(",") if name.strip()])
    prepare_tensorflow(args.verbose)
    from streamrec.infra.bench.quality import run_quality_benchmark

    print(json.dumps(run_quality_benchmark(config, steps, say=_say_unless(args.json))))
    return 0


def _say_unless(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            print(f"==> {message}", flush=True)

    return say
