"""Opens a storage port's adapter (:mod:`.adapters`) by the config section's ``type``.

Stage code opens a store with these factories and never imports an implementation (an
import-linter contract holds it to that). Each section's ``type`` picks the implementation, as
Feast's online and offline stores do:

- ``OnlineStore``, ``[online_store]``: ``redis``;
- ``ResultCache``, ``[result_cache]``: ``redis`` (with a near cache in each process's memory in
  front of it, ``local_entries``), or ``none`` to turn caching off;
- ``EventLedger``, ``[event_ledger]``: ``redis``;
- ``OfflineExamples``, ``[offline_examples]``: ``files`` (under ``path``: a local or shared
  directory, or an object-store URL);
- ``ModelRegistry``, ``[model_registry]``: ``files`` (under ``training.model_dir``, either
  kind too);
- ``EventBus``, ``[kafka]``: Kafka, the only event bus.

Implementations are imported only when opened, so a process that uses files alone never
imports the Redis or Kafka client.
"""

from __future__ import annotations

from collections.abc import Callable

from streamrec.infra.core.config import Config
from streamrec.infra.storage.ports.event_bus import EventBus
from streamrec.infra.storage.ports.event_ledger import EventLedger
from streamrec.infra.storage.ports.model_registry import ModelRegistry
from streamrec.infra.storage.ports.offline_examples import OfflineExamples
from streamrec.infra.storage.ports.online_store import OnlineStore
from streamrec.infra.storage.ports.result_cache import ResultCache


def _redis_online_store(config: Config) -> OnlineStore:
    from streamrec.infra.storage.adapters.redis_online_store import RedisOnlineStore

    return RedisOnlineStore(config)


def _redis_result_cache(config: Config) -> ResultCache:
    from streamrec.infra.storage.adapters.memory_result_cache import (
        MemoryResultCache,
        TieredResultCache,
    )
    from streamrec.infra.storage.adapters.redis_result_cache import RedisResultCache

    settings = config.result_cache
    if settings.local_entries <= 0:
        return RedisResultCache(config)
    near = MemoryResultCache(settings.local_entries, settings.ttl_seconds)
    return TieredResultCache(near, RedisResultCache(config))


def _no_result_cache(config: Config) -> ResultCache:
    from streamrec.infra.storage.adapters.no_result_cache import NoResultCache

    return NoResultCache()


def _redis_event_ledger(config: Config) -> EventLedger:
    from streamrec.infra.storage.adapters.redis_event_ledger import RedisEventLedger

    return RedisEventLedger(config)


def _file_offline_examples(config: Config) -> OfflineExamples:
    from streamrec.infra.storage.adapters.file_offline_examples import FileOfflineExamples

    return FileOfflineExamples(config)


def _file_model_registry(config: Config) -> ModelRegistry:
    from streamrec.infra.storage.adapters.file_model_registry import FileModelRegistry

    return FileModelRegistry(config)


ONLINE_STORES: dict[str, Callable[[Config], OnlineStore]] = {"redis": _redis_online_store}
RESULT_CACHES: dict[str, Callable[[Config], ResultCache]] = {
    "redis": _redis_result_cache,
    "none": _no_result_cache,
}
EVENT_LEDGERS: dict[str, Callable[[Config], EventLedger]] = {"redis": _redis_event_ledger}
OFFLINE_EXAMPLES: dict[str, Callable[[Config], OfflineExamples]] = {"files": _file_offline_examples}


def open_online_store(config: Config) -> OnlineStore:
    return ONLINE_STORES[config.online_store.type](config)


def open_result_cache(config: Config) -> ResultCache:
    return RESULT_CACHES[config.result_cache.type](config)


def open_event_ledger(config: Config) -> EventLedger:
    return EVENT_LEDGERS[config.event_ledger.type](config)


def open_offline_examples(config: Config) -> OfflineExamples:
    return OFFLINE_EXAMPLES[config.offline_examples.type](config)


MODEL_REGISTRIES: dict[str, Callable[[Config], ModelRegistry]] = {"files": _file_model_registry}


def open_model_registry(config: Config) -> ModelRegistry:
    return MODEL_REGISTRIES[config.model_registry.type](config)


def discard_key_namespace(config: Config) -> int:
    """Deletes every key under ``redis.key_prefix``: what the online store, the event ledger
    and the result cache of this configuration wrote. For scratch namespaces only."""
    from streamrec.infra.storage.adapters.redis_connection import delete_namespace

    return delete_namespace(config)


def open_event_bus(config: Config) -> EventBus:
    from streamrec.infra.storage.adapters.kafka_event_bus import KafkaEventBus

    return KafkaEventBus(config)
