"""``streamrec train``: the trainer role, as scheduled retraining jobs run it."""

from __future__ import annotations

import argparse
import dataclasses

from streamrec.infra.cli.runtime import prepare_tensorflow
from streamrec.infra.config import Config
from streamrec.infra.errors import StreamrecError


def add_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="fit the two-tower model and export a new version")
    train.add_argument("--start-date", help="first event date to train on (YYYY-MM-DD)")
    train.add_argument("--end-date", help="last event date to train on (YYYY-MM-DD)")
    train.add_argument("--epochs", type=int, help="override training.epochs")
    train.add_argument("--batch-size", type=int, help="override training.batch_size")
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace, config: Config) -> int:
    for name in ("start_date", "end_date"):
        _check_date(name, getattr(args, name))
    overrides = {
        k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None
    }
    if any(v < 1 for v in overrides.values()):
        raise StreamrecError("--epochs and --batch-size must be at least 1")
    params = dataclasses.replace(config.training, **overrides)

    prepare_tensorflow(args.verbose)
    from streamrec.training.trainer import train

    version = train(config, params, args.start_date, args.end_date)
    metrics = version.metadata()["metrics"]
    shown = ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
    print(f"exported model version {version.version} to {version.root} ({shown})")
    return 0


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
