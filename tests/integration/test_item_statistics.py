"""Item popularity windows and decayed frequencies in the real Redis."""

import dataclasses

import pytest
import redis

from streamrec.infra.storage import open_online_store
from streamrec.infra.storage.adapters import redis_item_statistics
from streamrec.infra.storage.ports.online_store import ItemEvent

HOUR = 3_600_000
T0 = 1_767_571_200_000  # 2026-01-05T00:00Z


def _store(config, windows="1h,1d", half_life_hours=1.0):
    features = dataclasses.replace(
        config.features, popularity_windows=windows, frequency_half_life_hours=half_life_hours
    )
    return open_online_store(dataclasses.replace(config, features=features))


def _events(*pairs):
    return [ItemEvent(item, T0 + offset) for item, offset in pairs]


def test_windows_count_recent_events_and_forget_old_ones_as_time_passes(config):
    store = _store(config)
    store.add_item_events("b0:p0", _events(("a", 0), ("a", 1000), ("b", 10 * 60_000)))
    store.advance_item_windows(T0 + 15 * 60_000)
    assert store.popular_items("1h", 10).items == [("a", 2.0), ("b", 1.0)]
    assert store.popular_items("1h", 10).current_to == T0 + 15 * 60_000

    store.add_item_events("b1:p0", _events(("c", 2 * HOUR), ("c", 2 * HOUR + 1)))
    store.advance_item_windows(T0 + 2 * HOUR)
    assert store.popular_items("1h", 10).items == [("c", 2.0)]  # a and b left the hour
    assert len(store.popular_items("1d", 1).items) == 1
    assert dict(store.popular_items("1d", 10).items) == {"a": 2.0, "b": 1.0, "c": 2.0}


def test_an_event_older_than_a_window_is_not_counted_in_it(config):
    store = _store(config)
    store.add_item_events("b0:p0", _events(("a", 3 * HOUR)))
    store.advance_item_windows(T0 + 3 * HOUR)
    store.add_item_events("b1:p0", _events(("old", 0)))  # 3 hours late
    assert [item for item, _ in store.popular_items("1h", 10).items] == ["a"]
    assert "old" in dict(store.popular_items("1d", 10).items)


def test_the_same_work_is_counted_once(config):
    store = _store(config)
    assert store.add_item_events("b7:p1", _events(("a", 0), ("b", 0)))
    assert not store.add_item_events("b7:p1", _events(("a", 0), ("b", 0)))  # a replay
    store.advance_item_windows(T0)
    assert dict(store.popular_items("1h", 10).items) == {"a": 1.0, "b": 1.0}


def test_frequencies_decay_with_the_half_life_and_sum_to_one(config):
    store = _store(config, half_life_hours=1.0)
    store.add_item_events("b0:p0", _events(("old", 0), ("new", HOUR)))
    shares = dict(store.item_frequencies().items)
    assert shares["new"] == pytest.approx(2 / 3) and shares["old"] == pytest.approx(1 / 3)


def test_frequencies_survive_a_rescale_far_past_the_landmark(config):
    store = _store(config, half_life_hours=1.0)
    store.add_item_events("b0:p0", _events(("a", 0)))
    store.advance_item_windows(T0 + 150 * HOUR)  # past 100 half-lives: rescaled
    store.add_item_events("b1:p0", _events(("b", 150 * HOUR), ("b", 150 * HOUR)))
    shares = dict(store.item_frequencies().items)
    assert shares["b"] == pytest.approx(1.0, abs=1e-9) and shares["a"] == pytest.approx(0.0)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_an_unknown_window_is_named_in_the_error(config):
    with pytest.raises(ValueError, match=r"no popularity window '2h' \(configured: 1h, 1d\)"):
        _store(config).popular_items("2h", 5)


def test_sliding_visits_only_buckets_that_hold_counts(config):
    """A year between two events is ~3,500 empty hour-window bucket slots; none is read."""
    store = _store(config, windows="1h", half_life_hours=24.0)
    store.add_item_events("b0:p0", _events(("a", 0)))
    store.advance_item_windows(T0)
    client = redis.Redis.from_url(config.redis_url)
    before = client.info("commandstats").get("cmdstat_zrange", {}).get("calls", 0)
    store.add_item_events("b1:p0", _events(("b", 8760 * HOUR)))
    store.advance_item_windows(T0 + 8760 * HOUR)
    assert client.info("commandstats")["cmdstat_zrange"]["calls"] - before == 1  # a's bucket
    assert store.popular_items("1h", 10).items == [("b", 1.0)]


def test_a_long_slide_is_split_into_bounded_calls(config, monkeypatch):
    monkeypatch.setattr(redis_item_statistics, "_SLIDE_BUCKETS", 2)
    store = _store(config, windows="1h,1d")
    store.add_item_events("b0:p0", _events(*[(f"i{n}", n * 10 * 60_000) for n in range(5)]))
    calls = []
    script = store._items._advance
    monkeypatch.setattr(store._items, "_advance", lambda **kw: calls.append(1) or script(**kw))
    store.advance_item_windows(T0 + 3 * HOUR)
    assert len(calls) == 3  # the hour window's 5 buckets, 2 a call; the day's are still live
    assert store.popular_items("1h", 10).items == []
    assert len(store.popular_items("1d", 10).items) == 5
    assert store.popular_items("1h", 10).current_to == T0 + 3 * HOUR


def test_windows_written_before_buckets_were_indexed_still_slide(config):
    """Earlier versions kept ``:lowest`` instead of an index; their buckets are found once."""
    store = _store(config, windows="1h")
    store.add_item_events("b0:p0", _events(("a", 0), ("b", 30 * 60_000)))
    client = redis.Redis.from_url(config.redis_url)
    window = f"{config.redis.key_prefix}:pop:1h"
    lowest = int(client.zrange(f"{window}:buckets", 0, 0)[0])  # the index, as :lowest held it
    client.delete(f"{window}:buckets")
    client.set(f"{window}:lowest", lowest)
    store.advance_item_windows(T0 + 70 * 60_000)
    assert store.popular_items("1h", 10).items == [("b", 1.0)]
    assert not client.exists(f"{window}:lowest")


def test_indexing_a_long_span_of_old_buckets_is_split_across_calls(config):
    """A ``:lowest`` far behind the watermark means millions of slots to probe: one script
    call doing them all would hold Redis for seconds, so each call probes a bounded share."""
    store = _store(config, windows="1h")
    store.add_item_events("b0:p0", _events(("a", 0), ("b", 30 * 60_000)))
    client = redis.Redis.from_url(config.redis_url)
    window = f"{config.redis.key_prefix}:pop:1h"
    lowest = int(client.zrange(f"{window}:buckets", 0, 0)[0])
    client.delete(f"{window}:buckets")
    slots = 2 * redis_item_statistics._SLIDE_BUCKETS * redis_item_statistics._INDEX_SLOTS_PER_BUCKET
    client.set(f"{window}:lowest", lowest - slots)
    calls = client.info("commandstats")["cmdstat_evalsha"]["calls"]
    store.advance_item_windows(T0 + 70 * 60_000)
    assert client.info("commandstats")["cmdstat_evalsha"]["calls"] - calls >= 3
    assert store.popular_items("1h", 10).items == [("b", 1.0)]
    assert not client.exists(f"{window}:lowest")


def test_events_years_after_the_landmark_are_counted_without_overflow(config):
    """History imported from years ago, then live events: 2 ** (years / a day) overflows a
    float, so the frequencies are rescaled to the new events' time in the same call."""
    store = _store(config, half_life_hours=24.0)
    store.add_item_events("b0:p0", _events(("old", 0)))
    store.advance_item_windows(T0)
    years = 15 * 8760 * HOUR
    assert store.add_item_events("b1:p0", _events(("new", years), ("new", years + HOUR)))
    shares = dict(store.item_frequencies().items)
    assert shares["new"] == pytest.approx(1.0) and shares["old"] == pytest.approx(0.0)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_window_takes_one_increment_per_item_whatever_its_buckets(config):
    """An item's events in 10 buckets of the 1 d window (hour buckets): 10 bucket increments,
    then one for the window and one for the frequencies, and the window still counts all."""
    store = _store(config, windows="1d")
    client = redis.Redis.from_url(config.redis_url)
    before = client.info("commandstats").get("cmdstat_zincrby", {}).get("calls", 0)
    store.add_item_events("b0:p0", _events(*[("a", n * HOUR) for n in range(10)]))
    assert client.info("commandstats")["cmdstat_zincrby"]["calls"] - before == 10 + 1 + 1
    store.advance_item_windows(T0 + 10 * HOUR)
    assert store.popular_items("1d", 10).items == [("a", 10.0)]
