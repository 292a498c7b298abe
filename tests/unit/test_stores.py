"""Storage adapters that need no running service: factories, settings and the file store."""

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from streamrec.infra import storage as stores
from streamrec.infra.core.config import (
    REDIS_STORES,
    EventLedgerConfig,
    KafkaConfig,
    ModelRegistryConfig,
    OfflineExamplesConfig,
    OnlineStoreConfig,
    ResultCacheConfig,
    load_config,
    render_toml,
)
from streamrec.infra.core.errors import StoreUnavailable, StreamrecError
from streamrec.infra.devstack.free_port import free_port
from streamrec.infra.storage.adapters.kafka_event_bus import client_settings, topic_settings
from streamrec.infra.storage.adapters.redis_connection import (
    RedisEndpoint,
    redis_client,
    store_endpoints,
)
from streamrec.infra.storage.ports.result_cache import RankedItems


@pytest.mark.parametrize(
    ("section", "implementations"),
    [
        (OnlineStoreConfig, stores.ONLINE_STORES),
        (ResultCacheConfig, stores.RESULT_CACHES),
        (EventLedgerConfig, stores.EVENT_LEDGERS),
        (ModelRegistryConfig, stores.MODEL_REGISTRIES),
        (OfflineExamplesConfig, stores.OFFLINE_EXAMPLES),
    ],
)
def test_every_configurable_type_has_an_implementation(section, implementations):
    allowed = typing.get_args(typing.get_type_hints(section)["type"])
    assert set(allowed) == set(implementations)


def test_the_none_result_cache_stores_nothing():
    config = load_config(environ={"STREAMREC_RESULT_CACHE_TYPE": "none"})
    cache = stores.open_result_cache(config)
    cache.put("k", RankedItems(["a"], [1.0]))
    assert cache.get("k") is None


def test_the_memory_result_cache_expires_entries_and_forgets_the_least_recently_used():
    from streamrec.infra.storage.adapters.memory_result_cache import MemoryResultCache

    now = [0.0]
    cache = MemoryResultCache(capacity=2, ttl_seconds=10, clock=lambda: now[0])
    for key in ("a", "b"):
        cache.put(key, RankedItems([key], [1.0]))
    assert cache.get("a").item_ids == ["a"]  # now "b" is the least recently used
    cache.put("c", RankedItems(["c"], [1.0]))
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    now[0] = 10.0
    assert cache.get("a") is None and cache.get("c") is None


class _SharedCache:
    def __init__(self):
        self.entries, self.reads, self.down = {}, 0, False

    def get(self, key):
        self.reads += 1
        if self.down:
            raise StoreUnavailable("Redis is unreachable")
        return self.entries.get(key)

    def put(self, key, ranked):
        if self.down:
            raise StoreUnavailable("Redis is unreachable")
        self.entries[key] = ranked


def test_the_tiered_result_cache_answers_near_hits_without_the_shared_cache():
    from streamrec.infra.storage.adapters.memory_result_cache import (
        MemoryResultCache,
        TieredResultCache,
    )

    shared = _SharedCache()
    shared.entries["elsewhere"] = RankedItems(["x"], [2.0])  # written by another process
    cache = TieredResultCache(MemoryResultCache(100, 60), shared)
    assert cache.get("elsewhere").item_ids == ["x"] and shared.reads == 1
    assert cache.get("elsewhere").item_ids == ["x"] and shared.reads == 1  # kept near
    shared.down = True
    with pytest.raises(StoreUnavailable):
        cache.put("mine", RankedItems(["y"], [1.0]))
    assert cache.get("mine").item_ids == ["y"]  # the near level kept it all the same
    with pytest.raises(StoreUnavailable):
        cache.get("absent")


def test_the_redis_result_cache_has_a_near_level_unless_configured_off():
    from streamrec.infra.storage.adapters.memory_result_cache import TieredResultCache
    from streamrec.infra.storage.adapters.redis_result_cache import RedisResultCache

    assert isinstance(stores.open_result_cache(load_config(environ={})), TieredResultCache)
    off = load_config(environ={"STREAMREC_RESULT_CACHE_LOCAL_ENTRIES": "0"})
    assert isinstance(stores.open_result_cache(off), RedisResultCache)


def test_kafka_clients_get_address_security_and_timeouts_from_one_section():
    plain = client_settings(load_config(environ={"STREAMREC_KAFKA_BOOTSTRAP": "k1:9092,k2:9092"}))
    assert plain["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert plain["security_protocol"] == "PLAINTEXT"
    assert not any(key.startswith(("sasl", "ssl")) for key in plain)
    secured = load_config(
        environ={
            "STREAMREC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMREC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "STREAMREC_KAFKA_SASL_USERNAME": "streamrec",
            "STREAMREC_KAFKA_SASL_PASSWORD": "s3cret",
            "STREAMREC_KAFKA_SSL_CAFILE": "/etc/kafka/ca.pem",
            "STREAMREC_KAFKA_CONNECT_TIMEOUT_MS": "1234",
        }
    )
    assert client_settings(secured) | {"bootstrap_servers": None} == {
        "bootstrap_servers": None,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "streamrec",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": "/etc/kafka/ca.pem",
        "request_timeout_ms": KafkaConfig().request_timeout_ms,
        "bootstrap_timeout_ms": 1234,
    }


def test_an_invalid_redis_url_is_store_unavailable():
    config = load_config(environ={"STREAMREC_REDIS_URL": "http://:pw@nowhere"})
    with pytest.raises(StoreUnavailable, match=r"Redis URL 'http://:\*\*\*@nowhere' is not valid"):
        redis_client(RedisEndpoint.of(config, "online_store"))


def test_the_offline_examples_path_defaults_under_the_state_dir(tmp_path):
    config = load_config(environ={"STREAMREC_STACK_STATE_DIR": str(tmp_path)})
    staged, handle = stores.open_offline_examples(config).open_staged("b", "2026-01-05", 0, "a")
    handle.close()
    assert Path(staged).is_relative_to(tmp_path / "examples")
    moved = dataclasses.replace(
        config, offline_examples=OfflineExamplesConfig(path=str(tmp_path / "x"))
    )
    staged, handle = stores.open_offline_examples(moved).open_staged("b", "2026-01-05", 0, "a")
    handle.close()
    assert Path(staged).is_relative_to(tmp_path / "x")


def test_path_settings_take_object_store_urls_and_local_paths_stay_the_default(tmp_path):
    config = load_config(
        environ={
            "STREAMREC_STACK_STATE_DIR": str(tmp_path),
            "STREAMREC_OFFLINE_EXAMPLES_PATH": "s3://bucket-one/examples/",
            "STREAMREC_TRAINING_MODEL_DIR": "file://" + str(tmp_path / "m"),
        }
    )
    assert config.examples_location == "s3://bucket-one/examples"
    assert config.examples_cache_dir == tmp_path / "cache" / "examples"
    assert config.model_location == str(tmp_path / "m") and config.model_dir == tmp_path / "m"
    with pytest.raises(StreamrecError, match=r"^offline_examples\.path is the URL s3://"):
        _ = config.examples_dir
    assert load_config(environ={}).model_location.endswith("/.streamrec/models")


def test_catalog_topics_are_compacted_and_replicas_must_acknowledge_as_configured():
    config = load_config(environ={"STREAMREC_KAFKA_REPLICATION_FACTOR": "3",
                                  "STREAMREC_KAFKA_MIN_INSYNC_REPLICAS": "2"})  # fmt: skip
    kafka = config.kafka
    assert topic_settings(config, kafka.items_topic) == {
        "min.insync.replicas": "2", "cleanup.policy": "compact"
    }  # fmt: skip
    assert topic_settings(config, kafka.imports_topic)["cleanup.policy"] == "compact"
    assert topic_settings(config, kafka.events_topic) == {"min.insync.replicas": "2"}


def test_each_redis_store_has_its_own_endpoint_where_it_names_a_url():
    config = load_config(
        environ={
            "STREAMREC_REDIS_URL": "redis://main:6379/0",
            "STREAMREC_EVENT_LEDGER_URL": "redis://:pw@ledger:6379/1",
        }
    )
    urls = {store: RedisEndpoint.of(config, store).url for store in REDIS_STORES}
    assert urls == {
        "online_store": "redis://main:6379/0",
        "result_cache": "redis://main:6379/0",
        "event_ledger": "redis://:pw@ledger:6379/1",
    }
    assert [e.url for e in store_endpoints(config)] == ["redis://main:6379/0", urls["event_ledger"]]
    assert "pw" not in render_toml(config, redact_secrets=True)


@pytest.mark.parametrize(
    ("url", "wrong"),
    [
        ("redis://s1:26379,s2/0", "Sentinel address 's2' is not host:port"),
        ("http://s1:26379/0", "scheme 'http' is not redis:// or rediss://"),
        ("redis://s1:26379/x", "database 'x' is not a number"),
    ],
)
def test_a_malformed_sentinel_url_is_store_unavailable_naming_the_part(url, wrong):
    config = load_config(environ={"STREAMREC_REDIS_URL": url, "STREAMREC_REDIS_MODE": "sentinel"})
    with pytest.raises(StoreUnavailable, match=re.escape(wrong)):
        redis_client(RedisEndpoint.of(config, "online_store"))


def test_an_object_store_that_does_not_answer_is_store_unavailable_naming_the_object(
    monkeypatch,
):
    from s3fs import S3FileSystem

    from streamrec.infra.storage.adapters.storage_root import StorageRoot

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "unit")
    S3FileSystem.clear_instance_cache()  # a client made with other settings is reused
    try:
        root = StorageRoot("s3://bucket-one/examples")
        with pytest.raises(StoreUnavailable, match=r"^cannot read s3://bucket-one/examples/a: "):
            root.read_bytes("a")
        with pytest.raises(StoreUnavailable, match=r"^cannot write s3://bucket-one/examples/b: "):
            root.publish("b", b"x", create_only=True)
    finally:
        S3FileSystem.clear_instance_cache()
