"""Redis emptied under a served model, then `streamrec features rebuild-online`: the online
store, the ledger and the answers come back as they were."""

import dataclasses

import pytest

from streamrec.features.job import FeatureJob
from streamrec.infra.storage import (
    discard_key_namespace,
    open_event_ledger,
    open_online_store,
    open_result_cache,
)
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from streamrec.serving.recommender import RecommendCall, Recommender
from streamrec.serving.retrieval_model import RetrievalModel
from tests.integration.conftest import TRAINING_EVENTS_SPEC

pytestmark = pytest.mark.slow  # the feature job, then a rebuild

EVENTS = generate(SyntheticSpec(**TRAINING_EVENTS_SPEC))
USERS = sorted({e.user_id for e in EVENTS})


@pytest.fixture
def processed(config, spark, trained):
    """The stream through the real feature job, its results served by the session's model."""
    _, _, result = trained
    config = dataclasses.replace(
        config, result_cache=dataclasses.replace(config.result_cache, type="none")
    )
    publish(config, EVENTS, progress=False)
    assert sum(r.accepted for r in FeatureJob(config, spark).run(until_idle=True)) == len(EVENTS)
    return config, result.version


def _snapshot(config, version):
    store, ledger = open_online_store(config), open_event_ledger(config)
    windows = config.features.popularity_windows.split(",")
    frequencies = store.item_frequencies().items
    total = sum(score for _, score in frequencies)
    recommender = Recommender(config, RetrievalModel(version), store, open_result_cache(config))
    return {
        "histories": {u: store.recent_history(u, 100).entries for u in USERS},
        "popular": {w: store.popular_items(w, 50).items for w in windows},
        "frequencies": [(item, round(score / total, 9)) for item, score in frequencies],
        "watermarks": ledger.user_watermarks(config.kafka.events_topic, 10**9, USERS),
        "answers": {u: recommender.recommend(RecommendCall(u, 10)).items for u in USERS[:40]},
    }


def test_redis_emptied_then_rebuilt_answers_as_before(processed, spark, tmp_path, run_cli):
    config, version = processed
    before = _snapshot(config, version)
    assert all(before["histories"].values()) and before["popular"]["7d"]

    assert discard_key_namespace(config) > 0  # Redis lost everything of this deployment
    emptied = _snapshot(config, version)
    assert not any(emptied["histories"].values()) and not emptied["watermarks"]

    done = run_cli.run(config, "features", "rebuild-online")
    assert done.returncode == 0, done.stderr
    assert f"{len(EVENTS)} events, {len(USERS)} users'" in done.stdout
    after = _snapshot(config, version)
    for part in ("histories", "popular", "frequencies", "watermarks", "answers"):
        assert after[part] == before[part], part

    again = run_cli.run(config, "features", "rebuild-online")  # idempotent
    assert again.returncode == 0, again.stderr
    assert _snapshot(config, version) == before

    # The claims came back too: a repeat of an accepted event is a duplicate again.
    repeats = EVENTS[-20:]
    publish(config, repeats, progress=False)
    reports = FeatureJob(config, spark).run(until_idle=True)
    assert sum(r.duplicates for r in reports) == len(repeats)
    assert sum(r.accepted for r in reports) == 0


def test_since_restores_only_the_newer_days(processed, tmp_path, run_cli):
    config, _ = processed
    discard_key_namespace(config)
    since = _date(max(e.timestamp for e in EVENTS))
    done = run_cli.run(config, "features", "rebuild-online", "--since", since)
    assert done.returncode == 0, done.stderr
    recent = [e for e in EVENTS if _date(e.timestamp) >= since]
    assert 0 < len(recent) < len(EVENTS)
    assert f" {len(recent)} events," in done.stdout
    store = open_online_store(config)
    restored = {u: store.recent_history(u, 100).entries for u in USERS}
    assert {e.event_id for entries in restored.values() for e in entries} <= {
        e.event_id for e in recent
    }


def test_a_bad_date_is_one_line_and_a_non_zero_exit(config, tmp_path, run_cli):
    done = run_cli.run(config, "features", "rebuild-online", "--since", "yesterday")
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "streamrec: error: --since 'yesterday' is not a date (YYYY-MM-DD)"
    )


def _date(timestamp_ms):
    import datetime

    return datetime.datetime.fromtimestamp(timestamp_ms / 1000, datetime.UTC).date().isoformat()
