"""A history in any order trains like the same history in time order.

Real histories arrive sorted by user (a warehouse dump), replayed, or late from a device. Each
test feeds the same events to the real feature job in two orders, in batches, and compares what
training reads (every event with its point-in-time history, through the trainer's own reader)
and what serving reads (the users' online histories in Redis).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import random

import pytest
import redis

from streamrec.features.job import FeatureJob
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.export_layout import HISTORY_PADDING
from streamrec.ingest.importer import import_file
from streamrec.ingest.publisher import publish
from streamrec.ingest.row_mapping import RowFilter, RowMapping
from streamrec.ingest.synthetic import SyntheticSpec, generate, in_user_blocks
from streamrec.ingest.tabular_files import TabularFile
from streamrec.training.data_window import committed_files, load_window
from tests.conftest import shared_dataset
from tests.integration.conftest import namespaced

pytestmark = pytest.mark.slow  # the retail year and a 300k stream through Spark

HOUR = 3_600_000
RETAIL = {"user_id": "CustomerID", "item_id": "StockCode", "timestamp": "InvoiceDate"}
NOT_CANCELLED = (RowFilter.parse("Quantity>0"), RowFilter.parse("InvoiceNo!~^C"))


def _with_batches_of(config, events_per_batch, **features):
    settings = dataclasses.replace(
        config.features, max_events_per_batch=events_per_batch, **features
    )
    return dataclasses.replace(config, features=settings)


def _run(config, spark) -> dict[str, int]:
    reports = FeatureJob(config, spark).run(until_idle=True)
    counts = {
        name: sum(getattr(r, name) for r in reports)
        for name in ("events", "accepted", "late", "duplicates", "rejected", "examples")
    }
    return counts | {"batches": len(reports)}


def training_view(config) -> dict[str, list]:
    """Every committed event with the history a per-event example of it holds, by event_id,
    as the trainer reads them (both layouts, windows merged)."""
    files = committed_files(config, None, None)
    holdout = load_window(files, config.features.history_length, 0.0, cutoff=0).holdout
    rows = zip(*(holdout[name].tolist() for name in holdout), strict=True)
    names = list(holdout)
    by_event = {}
    for row in rows:
        example = dict(zip(names, row, strict=True))
        assert example[spec.EVENT_ID] not in by_event, "an event has two examples"
        by_event[example[spec.EVENT_ID]] = example
    return by_event


def online_histories(config, users) -> dict[str, list]:
    client = redis.Redis.from_url(config.redis_url)
    pipe = client.pipeline(transaction=False)
    for user in users:
        pipe.zrange(spec.user_history_key(config.redis.key_prefix, user), 0, -1, withscores=True)
    return dict(zip(users, pipe.execute(), strict=True))


def _assert_same_training_and_serving(first, second, sample=200):
    view = training_view(first)
    assert view == training_view(second)
    users = sorted({example[spec.USER_ID] for example in view.values()})
    some = random.Random(5).sample(users, min(sample, len(users)))
    histories = online_histories(first, some)
    assert all(histories.values()), "every sampled user has an online history"
    assert histories == online_histories(second, some)
    return view


def _sorted_by_customer(source, target):
    """The file as `ORDER BY CustomerID` writes it: a stable sort, so time order per customer."""
    with gzip.open(source, "rt", newline="", encoding="utf-8") as rows:
        reader = csv.reader(rows)
        header = next(reader)
        column = header.index("CustomerID")
        body = sorted(reader, key=lambda row: row[column])
    with open(target, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(body)


def test_the_retail_year_sorted_by_customer_gives_the_examples_and_histories_of_time_order(
    stack, spark, tmp_path
):
    year = shared_dataset("online-retail-2010-12-to-2011-12.csv.gz")
    by_customer = tmp_path / "by-customer.csv"
    _sorted_by_customer(year, by_customer)
    mapping = RowMapping(RETAIL, "purchase", "iso", where=NOT_CANCELLED)
    runs = {}
    for name, (path, kind) in {"time": (year, "csv"), "user": (by_customer, "csv")}.items():
        config = _with_batches_of(namespaced(stack, tmp_path / name), 100_000, history_length=20)
        imported = import_file(config, TabularFile(path, kind), mapping, tmp_path / f"{name}.jsonl")
        runs[name] = (config, imported.summary(), _run(config, spark))

    (time_config, time_import, time_job), (user_config, user_import, user_job) = runs.values()
    assert time_import["imported"] == user_import["imported"] == 397_924
    assert time_job["late"] == user_job["late"] == 0
    assert time_job["batches"] >= 4 and user_job["batches"] >= 4
    for job in (time_job, user_job):
        assert job["accepted"] + job["duplicates"] == job["events"] == 397_924
    assert time_job["accepted"] == user_job["accepted"] == time_job["examples"]
    view = _assert_same_training_and_serving(time_config, user_config)
    assert len(view) == time_job["accepted"]


def test_a_stream_in_user_blocks_heavy_users_first_gives_the_examples_of_time_order(
    stack, spark, tmp_path
):
    events = generate(SyntheticSpec(users=3000, items=2000, events=300_000, seed=41))
    blocks = in_user_blocks(events)
    heavy = [e for e in blocks if e.user_id == blocks[0].user_id]
    assert heavy[-1].timestamp > blocks[len(heavy)].timestamp + 24 * HOUR  # late by partition
    configs = {}
    for name, order in {"time": events, "user": blocks}.items():
        config = _with_batches_of(namespaced(stack, tmp_path / name), 100_000)
        publish(config, order, progress=False)
        job = _run(config, spark)
        assert job == {
            "events": 300_000, "accepted": 300_000, "late": 0, "duplicates": 0, "rejected": 0,
            "examples": 300_000, "batches": 3,
        }  # fmt: skip
        configs[name] = config
    _assert_same_training_and_serving(configs["time"], configs["user"])


def _user_events(user, count, start, step):
    return [
        Event(f"{user}-{n}", user, f"i-{n % 7}", "view", start + n * step) for n in range(count)
    ]


@pytest.mark.parametrize("layout", ["sequences", "events"])
def test_events_arriving_out_of_order_across_batches_read_as_their_time_order(
    stack, spark, tmp_path, layout
):
    """Two users' events over six hours, once in time order and once in three batches that
    arrive middle, newest, oldest: within the horizon, so none is late."""
    start = 1_767_571_200_000
    events = _user_events("ann", 30, start, 12 * 60_000) + _user_events("bob", 9, start, HOUR)
    events.sort(key=lambda e: e.timestamp)
    thirds = [events[:13], events[13:26], events[26:]]
    arrivals = {"time": [events], "late": [thirds[1], thirds[2], thirds[0]]}
    configs = {}
    for name, batches in arrivals.items():
        config = namespaced(stack, tmp_path / name)
        config = dataclasses.replace(
            config, features=dataclasses.replace(config.features, example_layout=layout)
        )
        for batch in batches:
            publish(config, batch, progress=False)
            job = _run(config, spark)
            assert (job["accepted"], job["late"]) == (len(batch), 0)
        configs[name] = config
    in_time, arrived_late = training_view(configs["time"]), training_view(configs["late"])
    assert online_histories(configs["time"], ["ann", "bob"]) == online_histories(
        configs["late"], ["ann", "bob"]
    )
    if layout == "sequences":  # readers merge each user's windows into one timeline
        assert arrived_late == in_time
        return
    # An example is written once: it lacks its user's older events that arrived after it.
    arrived = {e.event_id: n for n, batch in enumerate(arrivals["late"]) for e in batch}
    length = configs["late"].features.history_length
    for event in events:
        known = [
            e.item_id
            for e in events
            if e.user_id == event.user_id
            and e.timestamp < event.timestamp
            and arrived[e.event_id] <= arrived[event.event_id]
        ]
        padded = [*known[::-1][:length], *[HISTORY_PADDING] * length][:length]
        assert arrived_late[event.event_id][spec.HISTORY] == padded
    differs = [e for e in events if arrived_late[e.event_id] != in_time[e.event_id]]
    assert differs and all(arrived[e.event_id] < 2 for e in differs)  # the oldest came last
