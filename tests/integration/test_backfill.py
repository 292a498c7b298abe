"""The Spark backfill: the stream's examples of a date range, rebuilt from the topic or a file."""

import dataclasses
from pathlib import Path

import pytest

from streamrec.features.backfill import run_backfill
from streamrec.features.examples import event_date
from streamrec.features.job import FeatureJob
from streamrec.features.tfrecord import decode_example, decode_sequence_example, read_records
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.storage import open_event_bus, open_offline_examples
from streamrec.ingest.event_file import write_events
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate

pytestmark = pytest.mark.slow  # Spark backfills

EVENTS = generate(SyntheticSpec(users=40, items=50, events=2000, seed=17, days=6))
DATES = sorted({event_date(e.timestamp) for e in EVENTS})


def _examples_by_date(config, dates):
    found = {}
    for file in open_offline_examples(config).files(dates[0], dates[-1]):
        for record in read_records(file.path):
            example = decode_example(record)
            found[example[spec.EVENT_ID][0].decode()] = example
    return found


def _files(config, dates):
    return {
        Path(f.path).name: Path(f.path).read_bytes()
        for f in open_offline_examples(config).files(dates[0], dates[-1])
    }


@pytest.fixture
def streamed(config, spark):
    """The per-event layout: these tests compare each event's example."""
    config = dataclasses.replace(
        config, features=dataclasses.replace(config.features, example_layout="events")
    )
    return _stream(config, spark)


def _stream(config, spark):
    bus = open_event_bus(config)
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        bus.ensure_topic(topic)
    publish(config, EVENTS, progress=False)
    FeatureJob(config, spark).run(until_idle=True)
    return config


def test_a_backfill_from_the_topic_rebuilds_the_same_examples_byte_identically(streamed, spark):
    config, middle = streamed, DATES[2:4]
    before = _examples_by_date(config, middle)
    report = run_backfill(config, spark, middle[0], middle[-1])
    assert report.examples == len(before) and report.events == len(EVENTS)
    assert _examples_by_date(config, middle) == before  # same examples, histories included
    names = {f.split("-part-")[0] for f in _files(config, middle)}
    assert names == {spec.backfill_name(middle[0], middle[-1])}  # the stream's are replaced
    files = _files(config, middle)
    run_backfill(config, spark, middle[0], middle[-1])
    assert _files(config, middle) == files  # a rerun is byte-identical
    everything = _examples_by_date(config, DATES)
    assert set(everything) == {e.event_id for e in EVENTS}  # other dates untouched


def test_a_backfill_from_a_file_replaces_the_dates_with_the_files_events(streamed, spark, tmp_path):
    config, day = streamed, DATES[1]
    kept = [e for e in EVENTS if e.user_id != "u-000001"]  # say this user asked to be forgotten
    write_events(tmp_path / "events.jsonl", kept)
    report = run_backfill(config, spark, day, day, tmp_path / "events.jsonl")
    rebuilt = _examples_by_date(config, [day])
    assert set(rebuilt) == {e.event_id for e in kept if event_date(e.timestamp) == day}
    assert report.examples == len(rebuilt)
    manifest = open_offline_examples(config).manifest(spec.backfill_name(day, day))
    assert manifest.source["file"].endswith("events.jsonl") and manifest.backfill.through_batch >= 0


def _window_steps(config, dates):
    """Each window's (user, event ids, context history) in the sequences layout."""
    windows = set()
    for file in open_offline_examples(config).files(dates[0], dates[-1]):
        assert file.layout == spec.SEQUENCES_LAYOUT
        for record in read_records(file.path):
            context, steps = decode_sequence_example(record)
            event_ids = tuple(step[0] for step in steps[spec.EVENT_ID])
            windows.add((context[spec.USER_ID][0], event_ids, tuple(context[spec.HISTORY])))
    return windows


def test_a_backfill_in_the_sequences_layout_rebuilds_the_stream_s_windows(config, spark):
    assert config.features.example_layout == "sequences"  # the default
    _stream(config, spark)
    middle = DATES[2:4]
    before = _window_steps(config, middle)
    report = run_backfill(config, spark, middle[0], middle[-1])
    assert report.examples == sum(len(steps) for _, steps, _ in before)
    assert _window_steps(config, middle) == before  # one stream batch: the same windows
    files = _files(config, middle)
    run_backfill(config, spark, middle[0], middle[-1])
    assert _files(config, middle) == files  # a rerun is byte-identical
