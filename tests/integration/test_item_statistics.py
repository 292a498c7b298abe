"""Item popularity windows and decayed frequencies in the real Redis."""

import dataclasses

import pytest

from streamrec.infra.ports.online_store import ItemEvent
from streamrec.infra.stores import open_online_store

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
