import redis

from features.online_store import HistoryEntry, UserHistoryStore


def _store(config, capacity=3):
    return UserHistoryStore(
        redis.Redis.from_url(config.redis_url), config.redis.key_prefix, capacity
    )


def test_recent_items_are_newest_first_and_trimmed_to_capacity(config):
    store = _store(config)
    store.append([("u", HistoryEntry(t, f"e{t}", f"i{t}")) for t in (5, 1, 4, 2, 3)])
    assert store.recent_items("u", 10) == ["i5", "i4", "i3"]
    assert store.recent_items("u", 2) == ["i5", "i4"]
    assert store.recent_items("nobody", 5) == []


def test_replayed_appends_change_nothing(config):
    store = _store(config, capacity=10)
    batch = [
        ("u", HistoryEntry(1, "e1", "a")),
        ("u", HistoryEntry(2, "e2", "a")),
        ("v", HistoryEntry(1, "e3", "b")),
    ]
    store.append(batch)
    before = store.entries(["u", "v"])
    store.append(batch)
    assert store.entries(["u", "v"]) == before
    assert before["u"] == [HistoryEntry(1, "e1", "a"), HistoryEntry(2, "e2", "a")]


def test_keys_follow_the_feature_spec(config):
    store = _store(config)
    store.append([("u-1", HistoryEntry(7, "e7", "i7"))])
    client = redis.Redis.from_url(config.redis_url)
    assert client.zrange(f"{config.redis.key_prefix}:user_history:u-1", 0, -1, withscores=True) == [
        (b'["i7","e7"]', 7.0)
    ]
