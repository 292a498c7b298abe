"""The Kafka source's view of a topic, against the real (tansu) broker."""

import pytest

from features.kafka_source import latest_offsets
from ingest.publisher import publish
from ingest.synthetic import SyntheticSpec, generate


def test_latest_offsets_count_every_record_even_on_tansu(config):
    events = generate(SyntheticSpec(users=20, items=20, events=2000, seed=6))
    publish(config, events, progress=False)
    assert sum(latest_offsets(config.kafka_bootstrap, config.kafka.events_topic).values()) == 2000


def test_missing_topic_is_reported(config):
    with pytest.raises(LookupError, match="does not exist"):
        latest_offsets(config.kafka_bootstrap, "never-created")
