"""``streamrec demo``, the main job (what ``make demo`` runs): the whole pipeline on the
embedded stack, judged on held-out events.

Generates a synthetic stream, holds out each user's last event, and runs every stage as its
own process -- publish, feature job, training, the ranking service -- against an isolated
namespace (its own topics, Redis key prefix and directories), so it neither sees nor disturbs
anything else on the same stack. Then it asks the running service for every held-out user's
top 10 and compares Recall@10 with a most-popular ranking built from the same training events.
It stops what it started, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from streamrec.infra.contracts.events import Event
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.devstack.scratch_run import ScratchRun
from streamrec.infra.devstack.stack import LocalStack
from streamrec.infra.devstack.stage_process import stop_process, wait_serving
from streamrec.ingest.event_file import write_events
from streamrec.ingest.item_import import CATALOG_CSV_MAP, write_item_csv
from streamrec.ingest.synthetic import SyntheticSpec, generate, generate_items
from streamrec.training.evaluation import popularity_ranking, ranks_in_lists, recall_at_k

K = 10


@dataclass(frozen=True)
class DemoSize:
    users: int = 2000
    items: int = 1000
    events: int = 100_000
    seed: int = 42
    epochs: int = 0  # 0: the configured training.epochs


def add_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole pipeline on the embedded stack and score it"
    )
    defaults = DemoSize()
    demo.add_argument("--users", type=int, default=defaults.users)
    demo.add_argument("--items", type=int, default=defaults.items)
    demo.add_argument("--events", type=int, default=defaults.events)
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument("--epochs", type=int, default=0, help="override training.epochs")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, config: Config) -> int:
    size = DemoSize(
        users=args.users, items=args.items, events=args.events, seed=args.seed, epochs=args.epochs
    )
    summary = run_demo(config, size)
    print(f"\nsummary: {summary['run_dir']}/summary.json")
    return 0


def split_last_events(events: list[Event], per_user: int = 1) -> tuple[list[Event], list[Event]]:
    """Leave-last-out: each user's final ``per_user`` events (by time) are held out."""
    by_user: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: (e.timestamp, e.event_id)):
        by_user.setdefault(event.user_id, []).append(event)
    held = {e.event_id for user_events in by_user.values() for e in user_events[-per_user:]}
    return [e for e in events if e.event_id not in held], [e for e in events if e.event_id in held]


def run_demo(config: Config, size: DemoSize) -> dict:
    run = ScratchRun.create(config, "demo")
    run_dir, demo_config, stages = run.run_dir, run.config, run.stages
    timings: dict[str, float] = {}

    stack = LocalStack(config)
    _say("starting the embedded stack")
    started = stack.up()
    server = None
    try:
        for status in stack.status():
            print("    " + status.describe())
        train_events, held_out = _dataset(size, run_dir)
        _say(f"publishing {len(train_events)} events to {demo_config.kafka.events_topic!r}")
        timings["publish"] = stages.run(
            "publish", ["events", "publish", str(run_dir / "train.jsonl")]
        ).seconds
        _say("importing the item catalog (categories: candidate-tower features)")
        catalog = ["items", "import", str(run_dir / "items.csv"), "--format", "csv"]
        timings["items"] = stages.run("items", [*catalog, "--map", CATALOG_CSV_MAP]).seconds
        _say("feature job (Spark): events -> point-in-time TFRecords + Redis history")
        timings["features"] = stages.run("features", ["features", "run", "--until-idle"]).seconds
        _say("training the two-tower model (TFRS)")
        train_args = ["train"] + (["--epochs", str(size.epochs)] if size.epochs else [])
        timings["train"] = stages.run("train", train_args).seconds
        _say(f"starting the ranking service on {_target(demo_config)}")
        began = time.monotonic()
        server = stages.start("serve", ["serve"])
        wait_serving(_target(demo_config), server, run_dir / "logs" / "serve.log")
        timings["serve_start"] = time.monotonic() - began
        summary = _evaluate(demo_config, train_events, held_out, timings)
    finally:
        if server is not None:
            stop_process(server)
        if started:
            stack.down(only=started)
    summary["run_dir"] = str(run_dir)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _dataset(size: DemoSize, run_dir: Path) -> tuple[list[Event], list[Event]]:
    _say(
        f"generating {size.events} events: {size.users} users, {size.items} items, seed {size.seed}"
    )
    try:
        spec = SyntheticSpec(users=size.users, items=size.items, events=size.events, seed=size.seed)
    except ValueError as exc:
        raise StreamrecError(f"demo: {exc}") from exc
    events = generate(spec)
    write_item_csv(run_dir / "items.csv", generate_items(spec))
    train_events, held_out = split_last_events(events)
    write_events(run_dir / "train.jsonl", train_events)
    write_events(run_dir / "held_out.jsonl", held_out)
    print(f"    holding out each user's last event: {len(held_out)} events kept for evaluation")
    return train_events, held_out


def _evaluate(
    config: Config, train_events: list[Event], held_out: list[Event], timings: dict
) -> dict:
    from streamrec.serving.client import RecommendationClient

    recent: dict[str, list[str]] = {}
    for event in train_events:  # already in time order
        recent.setdefault(event.user_id, []).append(event.item_id)
    _say(f"asking the service for Recall@{K} on {len(held_out)} held-out events")
    served = []
    with RecommendationClient.from_config(config, timeout_seconds=10) as client:
        for event in held_out:
            # Asked as the app would have asked: from where the event then happened.
            response = client.recommend(event.user_id, K, context=event.context)
            served.append([i.item_id for i in response.items])
            if len(served) <= 3:
                _show_user(event, recent.get(event.user_id, []), served[-1])
    targets = [e.item_id for e in held_out]
    model_recall = recall_at_k(ranks_in_lists(served, targets), K)
    seen = _seen_items(config, recent, held_out)
    popular = _popular_unseen(Counter(e.item_id for e in train_events), seen)
    popularity_recall = recall_at_k(ranks_in_lists(popular, targets), K)
    repeats = sum(event.item_id in items for event, items in zip(held_out, seen, strict=True))
    print(f"\nRecall@{K} on {len(held_out)} held-out events (full catalog):")
    if repeats:
        print(
            f"    ({repeats} of them repeat an item the user had: neither ranking may return "
            "it, as serving leaves seen items out)"
        )
    print(f"    served model (version {response.model_version}): {model_recall:.3f}")
    print(f"    most popular baseline:       {popularity_recall:.3f}")
    ratio = model_recall / popularity_recall if popularity_recall else float("inf")
    print(f"    model / popularity = {ratio:.1f}x")
    return {
        "held_out_events": len(held_out),
        "held_out_repeats": repeats,  # items the user had: serving leaves them out as seen
        "model_version": response.model_version,
        f"model_recall_at_{K}": model_recall,
        f"popularity_recall_at_{K}": popularity_recall,
        "seconds": {name: round(value, 1) for name, value in timings.items()},
    }


def _seen_items(
    config: Config, recent: dict[str, list[str]], held_out: list[Event]
) -> list[set[str]]:
    """For each held-out event, the items serving leaves out as seen: those of the user's
    online history, unless ``serving.exclude_seen`` is off."""
    if not config.serving.exclude_seen:
        return [set() for _ in held_out]
    length = config.features.online_history_length
    return [set(recent.get(event.user_id, [])[-length:]) for event in held_out]


def _popular_unseen(item_counts: Counter, seen: list[set[str]]) -> list[list[str]]:
    """The most-popular baseline under serving's rules: the top items each user has not seen."""
    ranking = popularity_ranking(item_counts)
    return [[item for item in ranking[: K + len(items)] if item not in items][:K] for items in seen]


def _show_user(event: Event, history: list[str], items: list[str]) -> None:
    print(f"\n    user {event.user_id}")
    print(f"      recent history (newest first): {', '.join(reversed(history[-5:]))}")
    print(f"      recommended: {', '.join(items)}")
    verdict = (
        f"rank {items.index(event.item_id) + 1}" if event.item_id in items else "not in top 10"
    )
    print(f"      held-out next item: {event.item_id} ({verdict})")


def _target(config: Config) -> str:
    return f"{config.serving.host}:{config.serving.port}"


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)
