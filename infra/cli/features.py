"""``streamrec features run``: the feature-worker role (Spark: Kafka -> examples + Redis)."""

from __future__ import annotations

import argparse
import dataclasses

from streamrec.infra.config import Config
from streamrec.infra.errors import StreamrecError
from streamrec.infra.ports.event_bus import EventBus, TopicNotFound
from streamrec.infra.stores import open_event_bus, open_online_store


def add_commands(commands: argparse._SubParsersAction) -> None:
    features = commands.add_parser("features", help="build training examples and online features")
    actions = features.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run the Spark feature job over the events topic")
    run.add_argument(
        "--until-idle",
        action="store_true",
        help="stop once every event published before the start is processed",
    )
    run.add_argument(
        "--trigger-seconds", type=float, help="how often to look for new events (features.*)"
    )
    run.add_argument(
        "--max-events-per-batch", type=int, help="cap a micro-batch, 0: no cap (features.*)"
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace, config: Config) -> int:
    config = _with_overrides(config, args)
    bus = open_event_bus(config)
    bus.ping()
    open_online_store(config).ping()
    _require_topic(bus, config.kafka.events_topic)
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        bus.ensure_topic(topic)

    from streamrec.features.job import FeatureJob
    from streamrec.features.metrics import FeatureJobMetrics
    from streamrec.features.spark_session import build_spark_session

    metrics = FeatureJobMetrics()
    if config.features.metrics_port:
        metrics.serve(config.features.metrics_port)
    spark = build_spark_session(config)
    job = FeatureJob(config, spark, metrics)
    try:
        reports = job.run(until_idle=args.until_idle)
    except Exception as exc:
        if type(exc).__name__ != "StreamingQueryException":
            raise
        raise StreamrecError(f"feature job failed: {_root_cause(exc)}") from None
    finally:
        spark.stop()
    kafka = config.kafka
    print(
        f"features: {len(reports)} batch(es), {sum(r.events for r in reports)} events -> "
        f"{sum(r.examples for r in reports)} examples in {config.examples_dir}; "
        f"{sum(r.rejected for r in reports)} rejected to {kafka.dead_letter_topic!r}, "
        f"{sum(r.late for r in reports)} late to {kafka.late_topic!r}, "
        f"{sum(r.duplicates for r in reports)} duplicates dropped; "
        f"{job.items_read} item record(s) to the catalog"
    )
    return 0


def _with_overrides(config: Config, args: argparse.Namespace) -> Config:
    overrides = {
        name: value
        for name, value in (
            ("trigger_seconds", args.trigger_seconds),
            ("max_events_per_batch", args.max_events_per_batch),
        )
        if value is not None
    }
    if any(value < 0 for value in overrides.values()):
        raise StreamrecError("--trigger-seconds and --max-events-per-batch must not be negative")
    return dataclasses.replace(config, features=dataclasses.replace(config.features, **overrides))


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
