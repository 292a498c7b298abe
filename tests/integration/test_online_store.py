"""The Redis online store against the real Redis."""

import dataclasses
import time

import pytest
import redis

from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage import discard_key_namespace, open_event_ledger, open_online_store
from streamrec.infra.storage.ports.event_ledger import Claim
from streamrec.infra.storage.ports.online_store import HistoryEntry
from tests.conftest import free_port


def _store(config, capacity=3):
    features = dataclasses.replace(
        config.features, online_history_length=capacity, history_length=capacity
    )
    return open_online_store(dataclasses.replace(config, features=features))


def test_recent_items_are_newest_first_and_trimmed_to_capacity_on_request(config):
    store = _store(config)
    store.append_history([("u", HistoryEntry(t, f"e{t}", f"i{t}")) for t in (5, 1, 4, 2, 3)])
    assert store.recent_items("u", 10) == ["i5", "i4", "i3", "i2", "i1"]  # not trimmed yet
    store.trim_histories(["u", "nobody"])
    assert store.recent_items("u", 10) == ["i5", "i4", "i3"]
    assert store.recent_items("u", 2) == ["i5", "i4"]
    assert store.recent_items("nobody", 5) == []


def test_recent_history_carries_times_and_types_and_reads_members_stored_before_them(config):
    store = _store(config, capacity=10)
    store.append_history([("u", HistoryEntry(7, "e7", "b", "click"))])
    # A member written before feature spec 3: [item_id, event_id], no type.
    client = redis.Redis.from_url(config.redis_url)
    client.zadd(f"{config.redis.key_prefix}:user_history:u", {'["a","e5"]': 5})
    before = store.recent_history("u", 5)
    assert before.entries == [
        HistoryEntry(7, "e7", "b", "click"),
        HistoryEntry(5, "e5", "a", ""),
    ]
    assert store.histories({"u": (6, 8)}, 5)["u"] == [
        HistoryEntry(5, "e5", "a", ""),
        HistoryEntry(7, "e7", "b", "click"),
    ]
    assert store.recent_history("nobody", 5).entries == []
    # The signature names the stored entries: the same until one is added.
    assert store.recent_history("u", 5).signature == before.signature
    store.append_history([("u", HistoryEntry(8, "e8", "c", "view"))])
    after = store.recent_history("u", 5)
    assert after.signature != before.signature and len(after) == 3


def test_history_reads_decode_both_reply_protocols_and_reconnect_after_a_broken_connection(
    config,
):
    from streamrec.infra.storage.adapters.redis_tracked_reads import TrackedReads

    store = _store(config, capacity=10)
    store.append_history([("u", HistoryEntry(t, f"e{t}", f"i{t}", "view")) for t in (1, 2, 3)])
    for protocol in (2, 3):  # RESP2 replies flat, RESP3 in pairs
        client = redis.Redis.from_url(config.redis_url, protocol=protocol)
        store._reads = TrackedReads(client, capacity=0)
        history = store.recent_history("u", 10)
        assert [(e.timestamp, e.item_id) for e in history.entries] == [
            (3, "i3"),
            (2, "i2"),
            (1, "i1"),
        ]
        assert history.signature == store.recent_history("u", 10).signature
    before = _history_reads(config)
    # Redis drops every client connection (as a restart would): the next read reconnects.
    _drop_connections(config)
    assert store.recent_history("u", 10).signature == history.signature
    assert _history_reads(config) == before + 1


def test_a_tracked_history_is_kept_until_redis_says_it_changed(config):
    reader, writer = _store(config, capacity=10), _store(config, capacity=10)
    writer.append_history([("u", HistoryEntry(1, "e1", "a", "view"))])
    first = reader.recent_history("u", 10)
    reads = _history_reads(config)
    assert reader.recent_history("u", 10) is first  # kept: no round trip
    assert _history_reads(config) == reads
    writer.append_history([("u", HistoryEntry(2, "e2", "b", "click"))])  # as the feature job
    assert [e.item_id for e in _changed(reader, "u", first).entries] == ["b", "a"]
    assert _history_reads(config) == reads + 1


def test_tracked_histories_are_dropped_with_a_broken_connection(config):
    """Invalidations sent while the connection was down are lost: nothing kept survives it."""
    reader, writer = _store(config, capacity=10), _store(config, capacity=10)
    writer.append_history([("u", HistoryEntry(1, "e1", "a", "view"))])
    assert len(reader.recent_history("u", 10)) == 1
    _drop_connections(config)
    writer.append_history([("u", HistoryEntry(2, "e2", "b", "click"))])
    assert len(reader.recent_history("u", 10)) == 2  # at once: no waiting for a push
    # An invalidation without keys (FLUSHDB, or Redis's tracking table full) drops them all.
    reads = _history_reads(config)
    reader._reads._local.reader._invalidated([b"invalidate", None])
    assert len(reader.recent_history("u", 10)) == 2
    assert _history_reads(config) == reads + 1


def test_each_thread_keeps_at_most_the_configured_histories(config):
    online_store = dataclasses.replace(config.online_store, tracked_histories=2)
    store = _store(dataclasses.replace(config, online_store=online_store), capacity=10)
    store.append_history([(u, HistoryEntry(1, f"e-{u}", "a")) for u in "uvw"])
    for user in "uvw":
        store.recent_history(user, 10)
    reads = _history_reads(config)
    store.recent_history("w", 10)
    store.recent_history("v", 10)
    assert _history_reads(config) == reads  # the two read last are kept
    store.recent_history("u", 10)
    assert _history_reads(config) == reads + 1


def _changed(store, user, before, timeout=2.0):
    """The user's history once it is not ``before``: Redis pushes the invalidation after
    the write's reply, so it may arrive a moment after the writer returns."""
    deadline = time.monotonic() + timeout
    while (history := store.recent_history(user, 10)) is before:
        assert time.monotonic() < deadline, "the kept history was never invalidated"
        time.sleep(0.001)
    return history


def _history_reads(config) -> int:
    stats = redis.Redis.from_url(config.redis_url).info("commandstats")
    return stats.get("cmdstat_zrevrange", {}).get("calls", 0)


def _drop_connections(config) -> None:
    redis.Redis.from_url(config.redis_url).client_kill_filter(_type="normal", skipme=True)


def test_replayed_appends_change_nothing(config):
    store = _store(config, capacity=10)
    batch = [
        ("u", HistoryEntry(1, "e1", "a")),
        ("u", HistoryEntry(2, "e2", "a")),
        ("v", HistoryEntry(1, "e3", "b")),
    ]
    store.append_history(batch)
    spans = {"u": (0, 10), "v": (0, 10)}
    before = store.histories(spans, 5)
    store.append_history(batch)
    assert store.histories(spans, 5) == before
    assert before["u"] == [HistoryEntry(1, "e1", "a"), HistoryEntry(2, "e2", "a")]


def test_histories_hold_what_point_in_time_history_of_a_span_can_need(config):
    store = _store(config, capacity=100)
    store.append_history([("u", HistoryEntry(t, f"e{t}", f"i{t}")) for t in range(1, 21)])
    found = store.histories({"u": (10, 15), "nobody": (1, 2)}, 3)
    # the 3 newest before 10, then everything from 10 up to, not including, 15
    assert [e.timestamp for e in found["u"]] == [7, 8, 9, 10, 11, 12, 13, 14]
    assert found["u"][0] == HistoryEntry(7, "e7", "i7")
    assert found["nobody"] == []


def test_keys_follow_the_feature_spec(config):
    store = _store(config)
    store.append_history([("u-1", HistoryEntry(7, "e7", "i7", "view"))])
    client = redis.Redis.from_url(config.redis_url)
    assert client.zrange(f"{config.redis.key_prefix}:user_history:u-1", 0, -1, withscores=True) == [
        (b'["i7","e7","view"]', 7.0)
    ]


def test_redis_down_is_store_unavailable_for_every_operation(config):
    down = dataclasses.replace(
        config, redis=dataclasses.replace(config.redis, url=f"redis://127.0.0.1:{free_port()}/0")
    )
    store = open_online_store(down)
    with pytest.raises(StoreUnavailable, match=r"Redis is unreachable .* `streamrec stack up`"):
        store.ping()
    operations = [
        lambda: store.append_history([("u", HistoryEntry(1, "e1", "a"))]),
        lambda: store.trim_histories(["u"]),
        lambda: store.histories({"u": (0, 1)}, 5),
        lambda: store.recent_items("u", 3),
        lambda: store.recent_history("u", 3),
    ]
    for operation in operations:
        with pytest.raises(StoreUnavailable, match=r"online store \(Redis at redis://127"):
            operation()


def test_a_deleted_key_namespace_leaves_its_neighbours(config):
    neighbours = [
        dataclasses.replace(config, redis=dataclasses.replace(config.redis, key_prefix=prefix))
        for prefix in (f"{config.redis.key_prefix}2", "x[1]*")
    ]
    for each in (config, *neighbours):
        _store(each).append_history([("u", HistoryEntry(n, f"e{n}", "i")) for n in range(3)])
    open_event_ledger(config).claim([Claim(f"e{n}", "b", "u", n) for n in range(2500)])
    assert discard_key_namespace(config) == 2501  # a history and the claims
    assert discard_key_namespace(neighbours[1]) == 1  # a glob pattern in a prefix is literal
    assert _store(config).recent_items("u", 5) == []
    assert _store(neighbours[0]).recent_items("u", 5) == ["i", "i", "i"]
