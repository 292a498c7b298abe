"""The feature job writing the sequences layout, and the trainer reading it as it reads the
per-event layout: the same events and the same held-out histories."""

import dataclasses

import numpy as np
import pytest

from streamrec.features.job import FeatureJob
from streamrec.features.tfrecord import decode_sequence_example, read_records
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.storage import open_event_bus, open_offline_examples
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from streamrec.training.data_window import load_window
from tests.integration.conftest import namespaced
from tests.integration.test_feature_job import _reference_histories

EVENTS = generate(SyntheticSpec(users=30, items=60, events=1500, seed=23, days=4))


def _run_job(config, spark, layout):
    config = dataclasses.replace(
        config,
        features=dataclasses.replace(
            config.features,
            example_layout=layout,
            max_events_per_batch=400,  # several batches: windows of a user across batches
        ),
    )
    bus = open_event_bus(config)
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        bus.ensure_topic(topic)
    publish(config, EVENTS, progress=False)
    reports = FeatureJob(config, spark).run(until_idle=True)
    assert sum(r.accepted for r in reports) == len(EVENTS) and len(reports) > 2
    return config


@pytest.fixture(scope="module")
def both_layouts(stack, spark, tmp_path_factory):
    return {
        layout: _run_job(namespaced(stack, tmp_path_factory.mktemp(layout)), spark, layout)
        for layout in ("events", "sequences")
    }


def test_windows_hold_each_event_once_in_time_order_after_their_history(both_layouts):
    config = both_layouts["sequences"]
    files = open_offline_examples(config).files()
    assert files and {f.layout for f in files} == {"sequences"}
    assert sum(f.examples for f in files) == len(EVENTS)
    reference = _reference_histories(EVENTS, config.features.history_length)
    seen = []
    for file in files:
        for record in read_records(file.path):
            context, steps = decode_sequence_example(record)
            event_ids = [step[0].decode() for step in steps[spec.EVENT_ID]]
            times = [step[0] for step in steps[spec.TIMESTAMP]]
            assert times == sorted(times)
            history = [item.decode() for item in context[spec.HISTORY]]
            assert history == reference[event_ids[0]]
            seen += event_ids
    assert sorted(seen) == sorted(e.event_id for e in EVENTS)


def test_the_trainer_reads_both_layouts_as_the_same_events_and_hold_out(both_layouts):
    length = both_layouts["events"].features.history_length
    windows = {
        layout: load_window(open_offline_examples(config).files(), length, holdout_fraction=0.2)
        for layout, config in both_layouts.items()
    }
    events, sequences = windows["events"], windows["sequences"]
    assert events.cutoff == sequences.cutoff
    for name in events.events:
        np.testing.assert_array_equal(events.events[name], sequences.events[name])
    order = {
        layout: np.argsort(window.holdout[spec.EVENT_ID]) for layout, window in windows.items()
    }
    for name in events.holdout:
        np.testing.assert_array_equal(
            events.holdout[name][order["events"]], sequences.holdout[name][order["sequences"]]
        )
    assert len(sequences.holdout[spec.EVENT_ID]) >= 0.15 * len(EVENTS)
    # Each event's context, as published, is what a training query of that event reads.
    read = dict(zip(events.events[spec.EVENT_ID], events.events[spec.CONTEXT_TOKENS], strict=True))
    published = {e.event_id: "\n".join(spec.context_tokens(e.context)).encode() for e in EVENTS}
    assert read == published and any(b"surface=deals" in c for c in read.values())
