"""``streamrec train``: the trainer role, as scheduled retraining jobs run it."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import threading

from streamrec.infra.cli.runtime import prepare_tensorflow
from streamrec.infra.cli.train_schedule import parse_interval, run_every
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="fit the two-tower model and export a new version")
    train.add_argument("--start-date", help="first event date to train on (YYYY-MM-DD)")
    train.add_argument("--end-date", help="last event date to train on (YYYY-MM-DD)")
    train.add_argument("--epochs", type=int, help="override training.epochs")
    train.add_argument("--batch-size", type=int, help="override training.batch_size")
    train.add_argument(
        "--query-encoder", choices=("mean", "gru", "transformer"), help="override training.*"
    )
    train.add_argument(
        "--warm-start",
        action="store_true",
        help="continue from the serving version's weights, growing its item vocabulary",
    )
    train.add_argument(
        "--every", metavar="INTERVAL", help="retrain on a schedule (30m, 6h, 1d) until stopped"
    )
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace, config: Config) -> int:
    for name in ("start_date", "end_date"):
        _check_date(name, getattr(args, name))
    overrides: dict[str, object] = {
        k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None
    }
    if any(v < 1 for v in overrides.values()):
        raise StreamrecError("--epochs and --batch-size must be at least 1")
    if args.query_encoder:
        overrides["query_encoder"] = args.query_encoder
    params = dataclasses.replace(config.training, **overrides)
    interval = parse_interval(args.every) if args.every else None

    prepare_tensorflow(args.verbose)
    from streamrec.training.trainer import train

    def run_once() -> None:
        result = train(config, params, args.start_date, args.end_date, args.warm_start, say=_say)
        _report(result, params.promotion_metric)

    if interval is None:
        run_once()
        return 0
    stop = threading.Event()

    def terminate(*_: object) -> None:  # mid-fit too: the next run resumes from its checkpoint
        stop.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    run_every(interval, run_once, stop)
    return 0


def _report(result, metric: str) -> None:
    if result is None:
        print("this worker's share of the fit is done; the chief evaluates and exports")
        return
    shown = ", ".join(
        f"{name} {figures[metric]:.4f}" for name, figures in result.evaluation["models"].items()
    )
    print(f"exported model version {result.version.version} to {result.version.root}")
    print(f"{metric} on {result.evaluation['queries']} held-out examples: {shown}")
    verdict = "promoted: it serves now" if result.decision.promote else "kept as a candidate"
    print(f"{verdict} ({result.decision.reason})", flush=True)


def _check_date(name: str, value: str | None) -> None:
    from datetime import date

    if value is None:
        return
    try:
        date.fromisoformat(value)
    except ValueError:
        raise StreamrecError(
            f"--{name.replace('_', '-')} {value!r} is not a date (YYYY-MM-DD)"
        ) from None


def _say(line: str) -> None:
    print(line, flush=True)
