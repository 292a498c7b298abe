"""``streamrec features run``: the feature-worker role (Spark: Kafka -> examples + Redis)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time

from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_event_bus, open_online_store
from streamrec.infra.storage.ports.event_bus import EventBus, TopicNotFound


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
    run.add_argument("--json", action="store_true", help="end with a JSON summary line")
    run.set_defaults(handler=_run)

    backfill = actions.add_parser(
        "backfill", help="rebuild the examples of a date range (Spark batch job)"
    )
    backfill.add_argument("--start", required=True, metavar="DATE", help="first date, YYYY-MM-DD")
    backfill.add_argument("--end", required=True, metavar="DATE", help="last date, YYYY-MM-DD")
    backfill.add_argument(
        "--source",
        default="topic",
        metavar="topic|FILE",
        help="the events topic (default) or a JSON Lines file of events",
    )
    backfill.set_defaults(handler=_backfill)

    rebuild = actions.add_parser(
        "rebuild-online",
        help="restore histories, item windows and the event ledger in Redis from the committed "
        "examples (after Redis lost them)",
    )
    rebuild.add_argument(
        "--since", metavar="DATE", help="only examples of events from this date on, YYYY-MM-DD"
    )
    rebuild.set_defaults(handler=_rebuild_online)


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
    spark_started = time.monotonic()
    spark = build_spark_session(config)
    spark_seconds = time.monotonic() - spark_started
    job = FeatureJob(config, spark, metrics, on_batch=_say_batch)
    try:
        reports = job.run(until_idle=args.until_idle)
    except Exception as exc:
        if type(exc).__name__ != "StreamingQueryException":
            raise
        raise StreamrecError(f"feature job failed: {_root_cause(exc)}") from exc
    finally:
        _stop_spark(spark)
    if args.json:
        print(json.dumps(_summary(reports, job, spark_seconds)))
        return 0
    kafka = config.kafka
    print(
        f"features: {len(reports)} batch(es), {sum(r.events for r in reports)} events -> "
        f"{sum(r.examples for r in reports)} examples in {config.examples_location}; "
        f"{sum(r.rejected for r in reports)} rejected to {kafka.dead_letter_topic!r}, "
        f"{sum(r.late for r in reports)} late to {kafka.late_topic!r} "
        f"({_late_share(reports):.2%} of events), "
        f"{sum(r.duplicates for r in reports)} duplicates dropped; "
        f"{job.items_read} item record(s) to the catalog"
    )
    return 0


def _stop_spark(spark: object) -> None:
    """Stops the session; a JVM that is already gone has nothing left to stop."""
    from py4j.protocol import Py4JError

    with contextlib.suppress(Py4JError, ConnectionError):
        spark.stop()


def _summary(reports: list, job: object, spark_seconds: float) -> dict:
    return {
        "batches": len(reports),
        **{
            name: sum(getattr(r, name) for r in reports)
            for name in ("events", "accepted", "examples", "rejected", "late", "duplicates")
        },
        "late_share": round(_late_share(reports), 6),
        "items": job.items_read,
        "seconds": round(job.seconds, 3),
        "batch_seconds": round(sum(r.seconds for r in reports), 3),
        "spark_start_seconds": round(spark_seconds, 3),
        "workers_ready_seconds": job.workers.seconds and round(job.workers.seconds, 3),
    }


def _late_share(reports: list) -> float:
    return sum(r.late for r in reports) / max(1, sum(r.events for r in reports))


def _backfill(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    for name in ("start", "end"):
        _require_date(name, getattr(args, name))
    if args.start > args.end:
        raise StreamrecError(f"--start {args.start} is after --end {args.end}")
    file = None if args.source == "topic" else Path(args.source)
    if file is not None and not file.is_file():
        raise StreamrecError(f"--source {args.source}: no such file (or say topic)")
    if file is None:
        open_event_bus(config).ping()
        _require_topic(open_event_bus(config), config.kafka.events_topic)

    from streamrec.features.backfill import run_backfill
    from streamrec.features.spark_session import build_spark_session

    spark = build_spark_session(config, app_name="streamrec-backfill", jvm_plans_only=False)
    try:
        report = run_backfill(config, spark, args.start, args.end, file)
    finally:
        spark.stop()
    print(
        f"backfill {report.name}: {report.examples} examples in {report.files} file(s) from "
        f"{report.events} events ({report.refused} refused, {report.late} late, "
        f"{report.duplicates} duplicates) in {report.seconds:.1f}s"
    )
    return 0


def _rebuild_online(args: argparse.Namespace, config: Config) -> int:
    if args.since is not None:
        _require_date("since", args.since)
    open_online_store(config).ping()

    from streamrec.features.online_rebuild import rebuild_online

    report = rebuild_online(config, args.since)
    print(
        f"rebuilt the online store from {report.files} example file(s): {report.events} events, "
        f"{report.users} users' histories and watermarks, {report.claims} claims "
        f"in {report.seconds:.1f}s"
    )
    return 0


def _require_date(name: str, value: str) -> None:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        raise StreamrecError(f"--{name} {value!r} is not a date (YYYY-MM-DD)") from None


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
        ) from exc


def _say_batch(report) -> None:
    """A batch's line on stdout, and its warnings on stderr, as they happen."""
    print(report.describe(), flush=True)
    for warning in report.warnings:
        print(warning, file=sys.stderr, flush=True)


def _root_cause(exc: Exception) -> str:
    """The last meaningful line of a Spark/Python error chain, for a one-line message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:500]
    return lines[-1][:500] if lines else type(exc).__name__
