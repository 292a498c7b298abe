"""``streamrec features run``: the feature-worker role (Spark: Kafka -> examples + Redis)."""

from __future__ import annotations

import argparse

from streamrec.infra.config import Config
from streamrec.infra.errors import StreamrecError
from streamrec.infra.ports.event_bus import EventBus, TopicNotFound


def add_commands(commands: argparse._SubParsersAction) -> None:
    features = commands.add_parser("features", help="build training examples and online features")
    actions = features.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run the Spark feature job over the events topic")
    run.add_argument(
        "--until-idle", action="store_true", help="stop once every available event is processed"
    )
    run.add_argument("--trigger-seconds", type=float, default=5.0, help="micro-batch interval")
    run.add_argument(
        "--max-events-per-batch", type=int, default=0, help="cap a micro-batch (0: no cap)"
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace, config: Config) -> int:
    from streamrec.infra.stores import open_event_bus, open_online_store

    bus = open_event_bus(config)
    bus.ping()
    open_online_store(config).ping()
    _require_topic(bus, config.kafka.events_topic)
    bus.ensure_topic(config.kafka.dead_letter_topic)

    from streamrec.features.job import FeatureJob
    from streamrec.features.spark_session import build_spark_session

    spark = build_spark_session(config)
    try:
        reports = FeatureJob(config, spark).run(
            until_idle=args.until_idle,
            trigger_seconds=args.trigger_seconds,
            max_events_per_batch=args.max_events_per_batch,
        )
    except Exception as exc:
        if type(exc).__name__ != "StreamingQueryException":
            raise
        raise StreamrecError(f"feature job failed: {_root_cause(exc)}") from None
    finally:
        spark.stop()
    events = sum(r.events for r in reports)
    examples = sum(r.examples for r in reports)
    rejected = sum(r.rejected for r in reports)
    print(
        f"features: {len(reports)} batch(es), {events} events -> {examples} examples "
        f"in {config.examples_dir}, {rejected} rejected to {config.kafka.dead_letter_topic!r}"
    )
    return 0


def _require_topic(bus: EventBus, topic: str) -> None:
    try:
        bus.end_offsets(topic)
    except TopicNotFound as exc:
        raise StreamrecError(
            f"{exc}; publish events first (`streamrec events publish FILE`)"
        ) from None


def _root_cause(exc: Exception) -> str:
    """The last meaningful line of a Spark/Python error chain, for a one-line message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:500]
    return lines[-1][:500] if lines else type(exc).__name__
