"""``streamrec bench serve``: the ranking service under load, beside its floors, in one run.

The run builds what it serves as an operator would: a synthetic stream is published and
turned into examples and Redis history by the feature job, and a model is trained on it.
The trained version is then re-exported over a catalog of ``--items`` (its trained items
plus items drawn from the trained embeddings' distribution, with the faiss index the trainer
would build for a catalog that size), so that retrieval costs what it costs at that size,
and with the configured popularity prior and item neighbour lists at middling weights, so that
every uncached answer pays their boosts.

Two API servers run as their own processes: one with the result cache, one without
(``uncached``: every call runs the query tower and the index). The load generator runs in its
own process (:mod:`.serve_load`), at concurrency 1 and ``--concurrency``, against them and
against the floors measured in the same run, all four interleaved over the same connections:
the health Check of the same server (a bare gRPC round trip) and a Redis GET. Raw index
search is timed in this process. Freshness is the time from publishing a click on a user's top
item to an answer without it, with the continuous feature worker running.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import numpy as np

from streamrec.infra.bench.serve_load import summary
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.item_neighbours import METADATA_KEY as NEIGHBOURS_KEY
from streamrec.infra.contracts.item_neighbours import NeighbourBoost
from streamrec.infra.contracts.popularity_prior import METADATA_KEY as PRIOR_KEY
from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.infra.core.config import Config, render_toml
from streamrec.infra.devstack.free_port import free_port
from streamrec.infra.devstack.scratch_run import ScratchRun
from streamrec.infra.devstack.stack import embedded_services
from streamrec.infra.devstack.stage_process import StageProcesses, stop_process, wait_serving
from streamrec.infra.storage import open_model_registry, open_online_store, open_result_cache
from streamrec.ingest import EventProducer
from streamrec.ingest.event_file import write_events
from streamrec.ingest.item_import import CATALOG_CSV_MAP, write_item_csv
from streamrec.ingest.synthetic import SyntheticSpec, generate, generate_items
from streamrec.serving.client import RecommendationClient
from streamrec.serving.recommender import RecommendCall, Recommender
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.training.export import export_catalog
from streamrec.training.item_index_build import build_item_index

_K = 10
_LOAD_USERS = 500


@dataclasses.dataclass(frozen=True)
class ServeBenchmark:
    items: int = 100_000
    concurrency: int = 8
    seconds: float = 10.0
    users: int = 5_000
    events: int = 100_000
    epochs: int = 3
    freshness_probes: int = 20


def run_serve_benchmark(config: Config, bench: ServeBenchmark, say: Callable) -> dict:
    # Cached answers must outlive both load runs (each: four paths interleaved, and the
    # warm-up): the second run's fill finds them cached, which does not renew them.
    ttl = max(config.result_cache.ttl_seconds, math.ceil(2 * (4 * bench.seconds + 2)) + 60)
    config = dataclasses.replace(
        config, result_cache=dataclasses.replace(config.result_cache, ttl_seconds=ttl)
    )
    run = ScratchRun.create(config, "bench-serve")
    with embedded_services(config), run.discarded_afterwards(say):
        return _measure(run, bench, say)


def _measure(run: ScratchRun, bench: ServeBenchmark, say: Callable) -> dict:
    users = _build(run, bench, say)
    served = _grow_catalog(run, bench.items, users, say)
    metadata = served.metadata()
    results: dict = {"items": bench.items, "concurrency": bench.concurrency,
                     "item_index": metadata["item_index"],
                     "popularity_prior": metadata[PRIOR_KEY],
                     "item_neighbours": metadata[NEIGHBOURS_KEY]}  # fmt: skip
    results["raw_index_search"] = _index_search(served, run, users)
    results["recommend_in_process"] = _boost_split(served, run, users)
    uncached = dataclasses.replace(
        run.config,
        serving=dataclasses.replace(run.config.serving, port=free_port(), metrics_port=free_port()),
        result_cache=dataclasses.replace(run.config.result_cache, type="none"),
    )
    (run.run_dir / "uncached.toml").write_text(render_toml(uncached))
    servers = [
        _start_server(run.stages, "serve-cached", run.config),
        _start_server(StageProcesses(run.run_dir / "uncached.toml", run.stages.log_dir),
                      "serve-uncached", uncached),
    ]  # fmt: skip
    try:
        results |= _load(run, uncached, users, bench, say)
        say(f"freshness: {bench.freshness_probes} clicks with the feature worker running")
        results["freshness_p95_s"], results["freshness_s"] = _freshness(run, uncached, users, bench)
    finally:
        for server in servers:
            stop_process(server)
    return results | ratios(results)


def _build(run: ScratchRun, bench: ServeBenchmark, say: Callable) -> list[str]:
    """Publishes a synthetic stream and its catalog, runs the feature job, trains a model;
    returns the stream's users."""
    items = min(bench.items, max(1000, bench.events // 5))
    spec = SyntheticSpec(users=bench.users, items=items, events=bench.events, seed=3)
    say(f"{bench.events} events of {bench.users} users over {items} trained items")
    events = generate(spec)
    write_events(run.run_dir / "events.jsonl", events)
    write_item_csv(run.run_dir / "items.csv", generate_items(spec))
    stages = run.stages
    stages.run("publish", ["events", "publish", str(run.run_dir / "events.jsonl")], echo=False)
    stages.run("items", ["items", "import", str(run.run_dir / "items.csv"), "--format", "csv",
                         "--map", CATALOG_CSV_MAP], echo=False)  # fmt: skip
    say("feature job, then training")
    stages.run("features", ["features", "run", "--until-idle"], echo=False)
    stages.run("train", ["train", "--epochs", str(bench.epochs)], echo=False)
    return sorted({event.user_id for event in events})


def _grow_catalog(run: ScratchRun, items: int, users: list[str], say: Callable):
    """The trained version re-exported over ``items`` items, promoted to serve."""
    registry = open_model_registry(run.config)
    trained = registry.current() or registry.versions()[-1]
    model = RetrievalModel(trained)
    known = np.load(trained.item_embeddings_file)
    extra = max(0, items - len(known))
    say(f"catalog of {items} items: {len(known)} trained, {extra} drawn like them")
    rng = np.random.default_rng(5)
    drawn = rng.multivariate_normal(known.mean(0), np.cov(known, rowvar=False), size=extra)
    embeddings = np.concatenate([known, drawn.astype(np.float32)])
    item_ids = model.item_ids.tolist() + [f"bench-{n:07d}" for n in range(extra)]
    queries = _queries(model, run, users[:1000])
    index, described = build_item_index(
        embeddings, lambda: queries, run.config.training.exact_search_max_items
    )
    say(f"item index: {described}")
    boosts = _measured_boosts(run.config)
    say(f"boosts: {boosts}")
    version = export_catalog(registry, trained, item_ids, embeddings, index, described, boosts)
    registry.promote(version.version, f"bench serve: catalog of {items} items")
    return version


def _measured_boosts(config: Config) -> dict:
    """The configured boosts with middling weights, whatever the short fit chose: what is
    measured is their cost, which every uncached answer of such a version pays."""
    training = config.training
    boosts = {PRIOR_KEY: {"weight": 0.0}, NEIGHBOURS_KEY: {"weight": 0.0}}
    temperature = training.temperature
    if training.popularity_prior_window:
        window, depth = training.popularity_prior_window, training.popularity_prior_depth
        boosts[PRIOR_KEY] = PopularityPrior(window, depth, 0.5 * temperature).to_metadata()
    if training.neighbours_per_item:
        history, per_item = config.features.history_length, training.neighbours_per_item
        boosts[NEIGHBOURS_KEY] = NeighbourBoost(history, per_item, 5 * temperature).to_metadata()
    return boosts


def _queries(model: RetrievalModel, run: ScratchRun, users: list[str]) -> np.ndarray:
    store, now = open_online_store(run.config), int(time.time() * 1000)
    return np.stack(
        [model.query_embedding(u, store.recent_history(u, model.history_length).entries, now)
         for u in users]
    )  # fmt: skip


def _index_search(version, run: ScratchRun, users: list[str]) -> dict:
    model = RetrievalModel(version)
    queries = _queries(model, run, users[:200])
    for query in queries[:20]:
        model.index.search(query, _K)
    latencies = []
    started = time.perf_counter()
    for query in queries:
        began = time.perf_counter()
        model.index.search(query, _K)
        latencies.append(time.perf_counter() - began)
    return summary(latencies, time.perf_counter() - started)


def _boost_split(version, run: ScratchRun, users: list[str], rounds: int = 3) -> dict:
    """Uncached Recommend called in this process with the version's boosts switched off in
    turn, interleaved: what each adds to a request, apart from gRPC and the other processes."""
    model = RetrievalModel(version)
    config = dataclasses.replace(
        run.config, result_cache=dataclasses.replace(run.config.result_cache, type="none")
    )
    prior, lists = model.popularity_prior, model.neighbour_boost
    variants = {
        "no_boosts": (None, None), "prior": (prior, None), "prior_and_lists": (prior, lists)
    }  # fmt: skip
    recommenders = {}
    for name, (variant_prior, variant_lists) in variants.items():
        variant = copy.copy(model)
        variant.popularity_prior, variant.neighbour_boost = variant_prior, variant_lists
        recommenders[name] = Recommender(
            config, variant, open_online_store(config), open_result_cache(config)
        )
        recommenders[name].prefetch()
    calls = [RecommendCall(user, _K) for user in users[:_LOAD_USERS]]
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    elapsed = dict.fromkeys(variants, 0.0)
    for round_number in range(rounds + 1):  # the first warms up
        for name, recommender in recommenders.items():
            started = time.perf_counter()
            times = [_timed(recommender.recommend, call) for call in calls]
            if round_number:
                elapsed[name] += time.perf_counter() - started
                latencies[name] += times
    return {name: summary(latencies[name], elapsed[name]) for name in variants}


def _timed(function: Callable, *args) -> float:
    began = time.perf_counter()
    function(*args)
    return time.perf_counter() - began


def _start_server(stages: StageProcesses, name: str, config: Config) -> subprocess.Popen:
    process = stages.start(name, ["serve"])
    target = f"{config.serving.host}:{config.serving.port}"
    wait_serving(target, process, stages.log_dir / f"{name}.log", timeout=600)
    return process


def _load(run: ScratchRun, uncached: Config, users: list[str], bench, say: Callable) -> dict:
    """Every path and floor, interleaved in one load process per concurrency (see
    :mod:`.serve_load`): the cached and uncached servers, and the floors beside them."""
    cached_target = run.serving_target
    uncached_target = f"{uncached.serving.host}:{uncached.serving.port}"
    store_key = f"{run.config.redis.key_prefix}:bench-get"
    _redis(run.config).set(store_key, b"x" * 200)  # about a cached answer's size
    plans = {
        "bare_grpc": {"call": "check", "target": cached_target},
        "raw_redis_get": {
            "call": "redis_get",
            "redis_url": run.config.redis_url,
            "redis_key": store_key,
        },
        "cached": {"call": "recommend", "target": cached_target},
        "uncached": {"call": "recommend", "target": uncached_target},
    }
    spec = {"plans": plans, "k": _K, "users": users[:_LOAD_USERS], "seconds": bench.seconds,
            "warmup_seconds": min(2.0, bench.seconds)}  # fmt: skip
    results = {}
    for concurrency, suffix in ((bench.concurrency, ""), (1, "_conc1")):
        # Fill the result cache just before: "cached" measures hits.
        with RecommendationClient.from_config(run.config, timeout_seconds=10) as client:
            for user in spec["users"]:
                client.recommend(user, _K)
        say(f"{', '.join(plans)}: interleaved at concurrency {concurrency}, "
            f"{bench.seconds:.0f}s each")  # fmt: skip
        measured = _load_process(spec | {"concurrency": concurrency})
        results |= {name + suffix: figures for name, figures in measured.items()}
    return results


def _redis(config: Config):
    import redis

    return redis.Redis.from_url(config.redis_url)


def _load_process(spec: dict) -> dict:
    command = [sys.executable, "-m", "streamrec.infra.bench.serve_load", json.dumps(spec)]
    timeout = len(spec["plans"]) * spec["seconds"] + 120
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _freshness(run: ScratchRun, uncached: Config, users: list[str], bench) -> tuple:
    worker = run.stages.start("features-worker", ["features", "run"])
    try:
        with RecommendationClient.from_config(uncached, timeout_seconds=10) as client:
            _one_click(run.config, client, users[0], timeout=300)  # waits for Spark's start
            probes = users[-bench.freshness_probes :]
            seconds = [_one_click(run.config, client, user) for user in probes]
    finally:
        stop_process(worker)
    ordered = sorted(seconds)  # p95 by nearest rank, as bench ingest takes it
    return ordered[int(0.95 * (len(ordered) - 1))], [round(s, 3) for s in seconds]


def _one_click(
    config: Config, client: RecommendationClient, user: str, timeout: float = 60
) -> float:
    """Seconds from sending a click on the user's top item to an answer without it."""
    top = client.recommend(user, _K).items[0].item_id
    click = Event(uuid.uuid4().hex, user, top, "click", int(time.time() * 1000))
    started = time.monotonic()
    with EventProducer(config) as producer:
        producer.send(click)
        producer.flush()
    while time.monotonic() - started < timeout:
        if top not in [item.item_id for item in client.recommend(user, _K).items]:
            return time.monotonic() - started
        time.sleep(0.02)
    raise RuntimeError(f"a click by {user} changed nothing within {timeout:.0f} s")


def ratios(results: dict) -> dict:
    """Each path's p99 and throughput beside bare gRPC's, measured in the same run."""
    bare, bare1 = results["bare_grpc"], results["bare_grpc_conc1"]
    return {
        "cached_p99_vs_bare": round(results["cached"]["p99_ms"] / bare["p99_ms"], 2),
        "cached_qps_vs_bare": round(results["cached"]["qps"] / bare["qps"], 2),
        "uncached_p99_vs_bare": round(results["uncached"]["p99_ms"] / bare["p99_ms"], 2),
        "uncached_conc1_p99_ms": results["uncached_conc1"]["p99_ms"],
        "bare_conc1_p99_ms": bare1["p99_ms"],
    }
