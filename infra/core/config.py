"""Effective configuration, read by every stage and every process role.

Precedence, lowest to highest: built-in defaults, an optional TOML file (``--config PATH`` or
``STREAMREC_CONFIG``), then environment variables named ``STREAMREC_<SECTION>_<KEY>``
(for example ``STREAMREC_KAFKA_BOOTSTRAP`` or ``STREAMREC_SERVING_PORT``).

Leaving ``kafka.bootstrap`` or ``redis.url`` empty means "use the embedded service that
``streamrec stack up`` runs"; setting either points streamrec at an existing deployment and the
local stack no longer starts that service.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from streamrec.infra.core.errors import StreamrecError

ENV_PREFIX = "STREAMREC_"
CONFIG_FILE_ENV = "STREAMREC_CONFIG"


@dataclass(frozen=True)
class StackConfig:
    """The embedded local stack: where its state lives and which ports its services use."""

    state_dir: str = ".streamrec"
    host: str = "127.0.0.1"
    kafka_port: int = 19092
    redis_port: int = 16379
    start_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class KafkaConfig:
    """The event bus: where the brokers are, which topics, and how to authenticate.

    Every Kafka producer, consumer and admin client is built from this one section (see
    :mod:`streamrec.infra.storage.adapters.kafka_event_bus`), so a secured cluster needs settings
    here only.
    """

    bootstrap: str = ""
    events_topic: str = "events"
    dead_letter_topic: str = "events.dlq"  # records that break the event schema, with the reason
    late_topic: str = "events.late"  # events older than the horizon, with the reason
    imports_topic: str = "events.imports"  # progress of `streamrec events import`
    items_topic: str = "items"  # the item catalog (item schema v1), keyed by item_id
    # Of the topics streamrec creates (`streamrec topics create`, or on first use where the
    # cluster allows it). Replication 3 with min_insync_replicas 2 is the usual production
    # choice: with acks=all a send then survives the loss of any one broker. 0 keeps the
    # broker's min.insync.replicas.
    partitions: int = 4
    replication_factor: int = 1
    min_insync_replicas: int = 0
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] = ""
    sasl_username: str = ""  # PLAIN and SCRAM
    sasl_password: str = ""
    # OAUTHBEARER: tokens from the identity provider's token endpoint by the OAuth 2.0 client
    # credentials grant, renewed before they expire.
    sasl_oauth_token_url: str = ""
    sasl_oauth_client_id: str = ""
    sasl_oauth_client_secret: str = ""
    sasl_oauth_scope: str = ""
    ssl_cafile: str = ""  # PEM file of the CA that signed the brokers' certificates
    # A client certificate, for brokers that authenticate clients by TLS (mTLS): PEM files of
    # the certificate and its private key, and the key's password if it is encrypted.
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_password: str = ""
    request_timeout_ms: int = 15_000
    connect_timeout_ms: int = 5_000  # how long a new client may try to reach any broker
    delivery_timeout_ms: int = 120_000  # how long a sent message may be retried before it fails

    def __post_init__(self) -> None:
        self._check_topics()
        self._check_credentials()
        if self.delivery_timeout_ms < self.request_timeout_ms + 100:
            raise ValueError(
                f"delivery_timeout_ms ({self.delivery_timeout_ms}) must exceed request_timeout_ms "
                f"({self.request_timeout_ms}) by 100 or more: a send needs time for one request"
            )

    def topics(self) -> dict[str, int]:
        """Every topic streamrec uses, with the partitions it is created with: the import
        checkpoints are read whole for one key's newest record, so they take one."""
        return {self.events_topic: self.partitions, self.dead_letter_topic: self.partitions,
                self.late_topic: self.partitions, self.items_topic: self.partitions,
                self.imports_topic: 1}  # fmt: skip

    def _check_topics(self) -> None:
        if self.partitions < 1 or self.replication_factor < 1:
            raise ValueError("partitions and replication_factor must be at least 1")
        if not 0 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) must be between 0 and "
                f"replication_factor ({self.replication_factor})"
            )

    def _check_credentials(self) -> None:
        sasl = self.security_protocol.startswith("SASL_")
        if self.sasl_mechanism == "OAUTHBEARER":
            needed = (self.sasl_oauth_token_url, self.sasl_oauth_client_id,
                      self.sasl_oauth_client_secret)  # fmt: skip
            if not all(needed):
                raise ValueError(
                    "sasl_mechanism OAUTHBEARER needs sasl_oauth_token_url, "
                    "sasl_oauth_client_id and sasl_oauth_client_secret"
                )
        elif sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism, "
                "sasl_username and sasl_password"
            )
        if not sasl and self.sasl_mechanism:
            raise ValueError(
                f"sasl_mechanism is set but security_protocol {self.security_protocol} "
                "does not use SASL (use SASL_SSL or SASL_PLAINTEXT)"
            )
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        if (self.ssl_certfile or self.ssl_keyfile) and not tls:
            raise ValueError(
                f"a client certificate is set but security_protocol {self.security_protocol} "
                "does not use TLS (use SSL or SASL_SSL)"
            )
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("ssl_keyfile is set without ssl_certfile")


@dataclass(frozen=True)
class RedisConfig:
    """The Redis deployment behind the online store, the event ledger and the result cache, how
    it is reached, and its timeout policy.

    ``mode`` says what ``url`` names. ``standalone``: the server. ``sentinel``: the Sentinels
    (``redis://:password@s1:26379,s2:26379/0``; the password and database are the master's),
    which give the address of the master they call ``sentinel_master`` and of its successor
    after a failover. ``cluster``: any node of a Redis Cluster, which names the others. Each
    store may have a deployment of its own (``online_store.url``,
    ``event_ledger.url``, ``result_cache.url``), reached in the same mode.

    The timeouts bound the feature job's and the tools' calls; the API server uses
    ``serving.store_timeout_ms`` for both instead. After ``breaker_failures`` unanswered calls
    in a row a process stops calling Redis for ``breaker_open_seconds``, then probes it with
    one call (0 failures: never stop)."""

    url: str = ""
    mode: Literal["standalone", "sentinel", "cluster"] = "standalone"
    sentinel_master: str = "mymaster"
    key_prefix: str = "streamrec"
    socket_timeout_seconds: float = 5.0
    connect_timeout_seconds: float = 2.0
    breaker_failures: int = 3
    breaker_open_seconds: float = 1.0
    # Replicas that must have the feature job's writes before it commits a batch's offsets
    # (Redis WAIT), so that a failover cannot lose what the topic no longer redelivers; 0: no
    # wait. A batch whose writes did not reach them within replica_timeout_ms is retried.
    min_replica_acks: int = 0
    replica_timeout_ms: int = 2000

    def __post_init__(self) -> None:
        if self.min_replica_acks < 0 or self.replica_timeout_ms <= 0:
            raise ValueError(
                f"min_replica_acks must be 0 or more and replica_timeout_ms more than 0, got "
                f"{self.min_replica_acks} and {self.replica_timeout_ms}"
            )
        if self.mode == "cluster" and self.min_replica_acks:
            raise ValueError(
                "min_replica_acks is not available in cluster mode: Redis WAIT covers the "
                "writes one node has seen from one connection"
            )
        if self.mode == "cluster" and ("{" in self.key_prefix or "}" in self.key_prefix):
            raise ValueError(
                f"key_prefix {self.key_prefix!r} has a brace, which would change the hash slots "
                "of a cluster's keys"
            )
        for name in ("socket_timeout_seconds", "connect_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0, got {getattr(self, name)}")
        if self.breaker_failures < 0 or self.breaker_open_seconds <= 0:
            raise ValueError(
                f"breaker_failures must be 0 (never open) or more and breaker_open_seconds more "
                f"than 0, got {self.breaker_failures} and {self.breaker_open_seconds}"
            )


@dataclass(frozen=True)
class OnlineStoreConfig:
    """Per-user history (and, later, item features) that serving and the feature job read."""

    type: Literal["redis"] = "redis"
    url: str = ""  # its own Redis deployment; empty: redis.url
    # Histories each serving thread keeps until Redis says they changed (client-side caching
    # with CLIENT TRACKING, Redis 6+; see storage/adapters/redis_tracked_reads.py). A cached
    # Recommend then makes no round trip. 0 reads every history from Redis.
    tracked_histories: int = 20_000

    def __post_init__(self) -> None:
        if self.tracked_histories < 0:
            raise ValueError(
                f"tracked_histories must be 0 (off) or more, got {self.tracked_histories}"
            )


@dataclass(frozen=True)
class ResultCacheConfig:
    """Recently served rankings; ``none`` turns caching off."""

    type: Literal["redis", "none"] = "redis"
    url: str = ""  # its own Redis deployment; empty: redis.url
    ttl_seconds: int = 60
    # Rankings each API-server process also keeps in memory, in front of the shared cache
    # (0: none); about 1 KB each at k=10. A hit there saves a Redis round trip.
    local_entries: int = 100_000


@dataclass(frozen=True)
class EventLedgerConfig:
    """The feature job's memory between batches: claimed event ids, user and partition
    watermarks."""

    type: Literal["redis"] = "redis"
    url: str = ""  # its own Redis deployment; empty: redis.url


@dataclass(frozen=True)
class ModelRegistryConfig:
    """Exported model versions and the ``current`` pointer serving follows; they live under
    ``training.model_dir``."""

    type: Literal["files"] = "files"
    # Where a process keeps its local copies of versions when model_dir is an object-store URL
    # (serving maps the index from there); give each replica its own. Default:
    # <state_dir>/cache/models
    cache_dir: str = ""


@dataclass(frozen=True)
class OfflineExamplesConfig:
    """Committed training examples; ``path`` must be visible to every Spark worker and trainer:
    a shared directory, or an object-store URL (``s3://bucket/examples``)."""

    type: Literal["files"] = "files"
    path: str = ""  # default: <state_dir>/examples
    # Where readers keep local copies of the files when path is a URL. Default:
    # <state_dir>/cache/examples
    cache_dir: str = ""


# Spark settings that streamrec sets from its own [spark] keys; `conf` may not set them.
# The config sections of the stores that live in Redis, each of which may name its own.
REDIS_STORES = ("online_store", "event_ledger", "result_cache")

SPARK_OWN_SETTINGS = {
    "spark.master": "master",
    "spark.sql.shuffle.partitions": "shuffle_partitions",
    "spark.driver.memory": "driver_memory",
    "spark.executor.memory": "executor_memory",
    "spark.executor.cores": "executor_cores",
    "spark.ui.enabled": "ui",
    "spark.sql.streaming.checkpointFileManagerClass": "checkpoint_file_manager",
}


@dataclass(frozen=True)
class SparkConfig:
    """The Spark session of the feature job and backfills: local by default, or a cluster's."""

    master: str = "local[2]"
    # Parts users are dealt into; a backfill's output depends on it, so it is a setting.
    shuffle_partitions: int = 4
    driver_memory: str = "2g"
    executor_memory: str = ""  # each executor's heap ("4g"); empty keeps Spark's (1g)
    executor_cores: int = 0  # cores per executor; 0 keeps the cluster manager's default
    ui: bool = False  # the driver's web UI (port 4040), off for the embedded runs
    # How the streaming query writes its checkpoint (``spark.sql.streaming.
    # checkpointFileManagerClass``); empty keeps Spark's choice for the filesystem. The
    # FileSystem manager writes the same files, faster (docs/benchmarks.md).
    checkpoint_file_manager: str = (
        "org.apache.spark.sql.execution.streaming.checkpointing."
        "FileSystemBasedCheckpointFileManager"
    )
    # Any other spark.* setting, passed through as given: a [spark.conf] table in TOML, or
    # STREAMREC_SPARK_CONF="spark.a=1,spark.b=2". For instance the container image and
    # namespace on Kubernetes, dynamic allocation, or event logs for the history server.
    conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shuffle_partitions < 1 or self.executor_cores < 0:
            raise ValueError("shuffle_partitions must be 1 or more and executor_cores 0 or more")
        for key in self.conf:
            if not key.startswith("spark."):
                raise ValueError(f"conf key {key!r} is not a spark.* setting")
            if key in SPARK_OWN_SETTINGS:
                raise ValueError(
                    f"conf key {key!r} is set by spark.{SPARK_OWN_SETTINGS[key]}; use that"
                )


@dataclass(frozen=True)
class FeaturesConfig:
    checkpoint_dir: str = ""
    history_length: int = 50  # items of history the model reads, in training and serving
    # Items kept per user in the online store: what serving feeds the model (so at least
    # history_length) and what it leaves out as already seen.
    online_history_length: int = 50
    consumer_group: str = "streamrec-features"
    # How far out of order one user's events may arrive: an event older than its own user's
    # newest accepted event by more than this goes to the late topic; a repeat within it is
    # dropped as a duplicate (README, "Data safety").
    dedup_horizon_hours: float = 24.0
    # An event whose time is further ahead of its record's publish time than this goes to the
    # dead-letter topic: one event from a clock set years ahead would otherwise move its
    # user's watermark there, and every later event of that user would be late. An hour lets
    # ordinary device clock drift through.
    max_event_time_ahead_minutes: float = 60.0
    # A backlog's batches: per-user and per-batch costs are paid once a batch, memory grows
    # with it (docs/benchmarks.md).
    max_events_per_batch: int = 500_000
    # The training examples' layout (feature spec): per user window (each event once, what the
    # sequence towers read), or one record per event with its history.
    example_layout: Literal["events", "sequences"] = "sequences"
    # How often the continuous worker looks for new events; a batch that takes longer is
    # followed at once. Idle, each look is one offsets request per partition
    # (docs/benchmarks.md).
    trigger_seconds: float = 0.1
    # How long the worker rides out Kafka or Redis being unavailable, retrying the failed step
    # with backoff, before it exits non-zero for its supervisor (see features.outage_budget).
    outage_budget_seconds: float = 300.0
    metrics_port: int = 9108  # Prometheus /metrics of the feature worker; 0 turns it off
    popularity_windows: str = "1h,1d,7d"  # sliding event-time windows of item counts
    frequency_half_life_hours: float = 24.0  # of the decayed item counts behind logQ

    def __post_init__(self) -> None:
        self.window_lengths_ms()  # a malformed window is a config error, found at start
        if not 1 <= self.history_length <= self.online_history_length:
            raise ValueError(
                f"history_length ({self.history_length}) must be 1 or more and at most "
                f"online_history_length ({self.online_history_length}): serving reads the "
                "model's history from the online store"
            )
        if self.outage_budget_seconds < 0:
            raise ValueError(
                f"outage_budget_seconds must be 0 (exit at the first failure) or more, "
                f"got {self.outage_budget_seconds}"
            )

    def window_lengths_ms(self) -> dict[str, int]:
        """The popularity windows by name ("1h"), in ms."""
        names = (part.strip() for part in self.popularity_windows.split(","))
        return {name: window_length_ms(name) for name in names}


def window_length_ms(name: str) -> int:
    """A popularity window's length in ms from its name: a number and a unit, m, h or d."""
    units = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
    number, unit = name[:-1], name[-1:]
    if not number.isdigit() or unit not in units or int(number) == 0:
        raise ValueError(f"popularity_windows: {name!r} is not a duration like 30m, 1h or 7d")
    return int(number) * units[unit]


@dataclass(frozen=True)
class TrainingConfig:
    model_dir: str = ""
    query_encoder: Literal["mean", "gru", "transformer"] = "transformer"
    event_context: bool = True  # each history event's type and its gap to the next or the request
    request_context: bool = True  # the request's context tokens (device, surface...), as events had
    embedding_dim: int = 64
    epochs: int = 100  # the ceiling: early stopping ends most fits sooner
    # Early stopping: the newest share of the training part is held out of the fit and ranked
    # after every epoch; the fit keeps its best epoch and stops after `patience` epochs
    # without a better one. patience = 0 trains every epoch on the whole training part.
    validation_fraction: float = 0.05
    patience: int = 5
    # After early stopping chose the epoch, train a fresh model that many epochs on the whole
    # training part, the validation share included (training/refit.py; docs/quality.md).
    refit: bool = False
    # Global windows per step, over all replicas; each position is a query, so a step reads
    # about batch_size x history_length of them (scale it down for longer histories).
    batch_size: int = 48
    learning_rate: float = 0.002
    temperature: float = 0.1
    # The loss's candidates: "full" scores every catalog item for every query (the exact
    # softmax); "sampled" the batch's other targets, corrected by logQ, plus extra_negatives
    # drawn uniformly; "auto" is full up to full_softmax_max_items, sampled above.
    softmax: Literal["auto", "full", "sampled"] = "sampled"
    full_softmax_max_items: int = 100_000
    logq: bool = True  # correct the sampled softmax for item frequency
    item_features: bool = True  # item categories from the online store's catalog, where present
    extra_negatives: int = 0  # items drawn uniformly from the catalog, beside in-batch ones
    # Train for what serving shows: with serving.exclude_seen, a target already in the
    # position's history is not a query and history items are not negatives (README).
    exclude_seen: bool = True
    blocks: int = 2  # transformer blocks of the query tower
    heads: int = 2  # attention heads per block
    dropout: float = 0.2  # on the tower's inputs and inside each block
    # Serving adds weight * ln(1 + count) to the scores of the items this popularity window
    # counts most, popularity_prior_depth of them (infra/contracts/popularity_prior.py). The
    # fit chooses the weight on its validation share, 0 (no prior) included; "" turns it off.
    popularity_prior_window: str = "7d"
    popularity_prior_depth: int = 1000
    # Serving adds weight * the summed neighbour lists of the history's newest items, each list
    # the neighbours_per_item items that go most with it (infra/contracts/item_neighbours.py).
    # The fit chooses the weight on its validation share, 0 included; 0 items turns it off.
    neighbours_per_item: int = 100
    holdout_fraction: float = 0.1  # the newest share of the examples, never trained on
    promotion_metric: str = "recall@10"
    promotion_tolerance: float = 0.02  # relative: 0.02 promotes at 98% of the serving version
    seed: int = 7
    # auto: MultiWorkerMirroredStrategy when TF_CONFIG names several tasks, MirroredStrategy
    # with several local GPUs, else one device.
    strategy: Literal["auto", "one_device", "mirrored", "multi_worker"] = "auto"
    checkpoint_every_steps: int = 200  # a killed run resumes from the last one
    mixed_precision: bool = False  # float16 compute, float32 weights: a GPU option
    jit_compile: bool = False  # XLA: a GPU option; correct but rarely faster on CPU
    # Larger catalogs get an approximate (faiss) index at export, checked to find at least
    # 95% of exact search's top 100 (docs/benchmarks.md).
    exact_search_max_items: int = 100_000

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0 or self.patience < 0:
            raise ValueError(
                f"validation_fraction must be in (0, 1) and patience 0 or more, got "
                f"{self.validation_fraction} and {self.patience}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.popularity_prior_depth < 1:
            raise ValueError(
                f"popularity_prior_depth must be 1 or more, got {self.popularity_prior_depth}"
            )
        if self.neighbours_per_item < 0:
            raise ValueError(
                f"neighbours_per_item must be 0 (off) or more, got {self.neighbours_per_item}"
            )
        if self.blocks < 1 or self.heads < 1 or self.embedding_dim % self.heads:
            raise ValueError(
                f"blocks ({self.blocks}) and heads ({self.heads}) must be 1 or more, and "
                f"embedding_dim ({self.embedding_dim}) a multiple of heads"
            )

    def full_softmax(self, items: int) -> bool:
        """Whether a catalog of ``items`` is trained with the exact softmax."""
        return self.softmax == "full" or (
            self.softmax == "auto" and items <= self.full_softmax_max_items
        )


@dataclass(frozen=True)
class IngestConfig:
    """The event API server (gRPC ``LogEvents``) for backends that do not write to Kafka."""

    host: str = "127.0.0.1"
    port: int = 50052
    workers: int = 8
    max_events_per_request: int = 1000
    max_request_bytes: int = 4 * 1024 * 1024
    ack_timeout_seconds: float = 30.0  # used when the caller set no deadline


@dataclass(frozen=True)
class ServingConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    # Threads answering requests; past the cores they only contend for Python's GIL
    # (docs/benchmarks.md).
    workers: int = 2
    # Server processes sharing the port (see streamrec.serving.server_processes); 0: one per
    # usable core, since one process runs Python on one core at a time (docs/benchmarks.md).
    processes: int = 0
    max_k: int = 500
    exclude_seen: bool = True  # leave out items in the user's online history
    # Cold start: popular items of this window (one of features.popularity_windows), topped
    # up from longer windows when it holds too few.
    popularity_window: str = "1d"
    # How old the catalog filters (unavailable items, categories) and the popular items held
    # in memory may be: each is read again from the online store once it is this old.
    catalog_refresh_seconds: float = 5.0
    max_rank_candidates: int = 1000
    max_excluded_items: int = 1000
    # Users whose last history this process keeps, to serve them from the model while the
    # online store is down.
    remembered_histories: int = 100_000
    # Share of each answer's slots given to items drawn uniformly from the catalog (see
    # streamrec.serving.exploration); 0 turns exploration off.
    exploration_share: float = 0.0
    # How long one call to Redis (the online store, the result cache) may take on the request
    # path, connecting included, before the request falls back: far below a client's deadline,
    # so a hung Redis looks to callers like one that is down. See docs/benchmarks.md.
    store_timeout_ms: int = 50
    reload_seconds: float = 5.0  # how often to look for a new current version; 0: never
    warmup_requests: int = 20  # recent users' requests a new version answers before it serves
    # Threads one request's computation may use: TensorFlow's pools, BLAS and faiss. A request
    # is small and many run at once, so more only contend (docs/benchmarks.md).
    threads_per_request: int = 1
    metrics_port: int = 9109  # Prometheus /metrics of the API server; 0 turns it off
    # Access (see streamrec.serving.access_control). Server side: PEM files for TLS, a CA for
    # client certificates, and a file of accepted bearer tokens. Client side (`streamrec
    # recommend`, the demo): the token to send, best set as STREAMREC_SERVING_TOKEN, and the CA
    # that signed the server's certificate.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    auth_tokens_file: str = ""
    token: str = ""
    tls_ca_file: str = ""

    def __post_init__(self) -> None:
        if self.processes < 0:
            raise ValueError(f"processes must be 0 (one per core) or more, got {self.processes}")
        if not 0.0 <= self.exploration_share <= 1.0:
            raise ValueError(f"exploration_share must be within 0..1, got {self.exploration_share}")
        if self.store_timeout_ms <= 0:
            raise ValueError(f"store_timeout_ms must be more than 0, got {self.store_timeout_ms}")


@dataclass(frozen=True)
class Config:
    stack: StackConfig = field(default_factory=StackConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    online_store: OnlineStoreConfig = field(default_factory=OnlineStoreConfig)
    result_cache: ResultCacheConfig = field(default_factory=ResultCacheConfig)
    event_ledger: EventLedgerConfig = field(default_factory=EventLedgerConfig)
    offline_examples: OfflineExamplesConfig = field(default_factory=OfflineExamplesConfig)
    model_registry: ModelRegistryConfig = field(default_factory=ModelRegistryConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)

    @property
    def state_dir(self) -> Path:
        return Path(self.stack.state_dir).expanduser().resolve()

    @property
    def kafka_external(self) -> bool:
        return bool(self.kafka.bootstrap)

    @property
    def redis_external(self) -> bool:
        return bool(self.redis.url)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap or f"{self.stack.host}:{self.stack.kafka_port}"

    def with_request_budget(self) -> Config:
        """This configuration with serving's per-call budget as its Redis timeouts: what the
        API server opens its stores with."""
        seconds = self.serving.store_timeout_ms / 1000
        redis = replace(self.redis, socket_timeout_seconds=seconds, connect_timeout_seconds=seconds)
        return replace(self, redis=redis)

    @property
    def redis_url(self) -> str:
        return self.redis.url or f"redis://{self.stack.host}:{self.stack.redis_port}/0"

    def store_urls(self) -> dict[str, str]:
        """Each Redis-backed store's own URL, empty where it uses ``redis.url``."""
        return {store: getattr(self, store).url for store in REDIS_STORES}

    @property
    def examples_location(self) -> str:
        """The examples' root: an absolute local path, or an object-store URL."""
        return self._location(self.offline_examples.path, "examples")

    @property
    def examples_dir(self) -> Path:
        """The examples' root as a local path; an error when it is a URL."""
        return self._local(self.examples_location, "offline_examples.path")

    @property
    def examples_cache_dir(self) -> Path:
        return self._data_path(self.offline_examples.cache_dir, "cache/examples")

    @property
    def features_checkpoint_dir(self) -> Path:
        return self._data_path(self.features.checkpoint_dir, "checkpoints/features")

    @property
    def model_location(self) -> str:
        """The model registry's root: an absolute local path, or an object-store URL."""
        return self._location(self.training.model_dir, "models")

    @property
    def model_dir(self) -> Path:
        """The model registry's root as a local path; an error when it is a URL."""
        return self._local(self.model_location, "training.model_dir")

    @property
    def model_cache_dir(self) -> Path:
        return self._data_path(self.model_registry.cache_dir, "cache/models")

    def _location(self, configured: str, default_under_state: str) -> str:
        if "://" in configured and not configured.startswith("file://"):
            return configured.rstrip("/")
        return str(self._data_path(configured.removeprefix("file://"), default_under_state))

    @staticmethod
    def _local(location: str, setting: str) -> Path:
        if "://" in location:
            raise StreamrecError(f"{setting} is the URL {location}; this needs a local path")
        return Path(location)

    def _data_path(self, configured: str, default_under_state: str) -> Path:
        if configured:
            return Path(configured).expanduser().resolve()
        return self.state_dir / default_under_state


def load_config(
    path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Builds the effective configuration from defaults, the TOML file and the environment."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_FILE_ENV) or None
    values: dict[str, dict[str, object]] = {}
    if path is not None:
        values = _read_toml(Path(path))
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != CONFIG_FILE_ENV:
            section, key = _env_section_and_key(name[len(ENV_PREFIX) :].lower())
            if section:
                values.setdefault(section, {})[key] = raw
    return _build(values, origin=str(path) if path else "environment")


def section_options(config: Config, section: str, **resolved: object) -> dict[str, str]:
    """One section as flat string options (``kafka.bootstrap`` ...), e.g. for Spark data sources.

    ``resolved`` overrides fields with values resolved on the driver (the effective bootstrap
    or path), so that a worker does not need the rest of the configuration to compute them.
    """
    fields = {**dataclasses.asdict(getattr(config, section)), **resolved}
    return {f"{section}.{key}": str(value) for key, value in fields.items()}


def config_from_options(options: Mapping[str, str], *sections: str) -> Config:
    """The inverse of :func:`section_options`: a Config holding just those sections."""
    values: dict[str, dict[str, object]] = {section: {} for section in sections}
    for name, raw in options.items():
        section, _, key = name.partition(".")
        if section in values:
            values[section][key] = raw
    return _build(values, origin="options")


def _env_section_and_key(name: str) -> tuple[str, str]:
    """``online_store_type`` -> (``online_store``, ``type``); section names hold underscores."""
    for section in sorted(_sections(), key=len, reverse=True):
        if name.startswith(section + "_") and len(name) > len(section) + 1:
            return section, name[len(section) + 1 :]
    return "", ""


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _read_toml(path: Path) -> dict[str, dict[str, object]]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise StreamrecError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise StreamrecError(f"config file {path} is not valid TOML: {exc}") from exc
    for section, table in data.items():
        if not isinstance(table, dict):
            raise StreamrecError(f"config file {path}: '{section}' must be a [section] table")
    return data


def _build(values: Mapping[str, Mapping[str, object]], origin: str) -> Config:
    sections = _sections()
    built = {}
    for section, table in values.items():
        if section not in sections:
            raise StreamrecError(
                f"{origin}: unknown config section '{section}' (known: {', '.join(sections)})"
            )
        built[section] = _build_section(section, sections[section], table, origin)
    config = Config(**built)
    windows = config.features.window_lengths_ms()
    if config.serving.popularity_window not in windows:
        raise StreamrecError(
            f"{origin}: serving.popularity_window={config.serving.popularity_window!r} is not "
            f"one of features.popularity_windows ({', '.join(windows)})"
        )
    prior = config.training.popularity_prior_window
    if prior and prior not in windows:
        raise StreamrecError(
            f"{origin}: training.popularity_prior_window={prior!r} is not one of "
            f'features.popularity_windows ({", ".join(windows)}), nor "" (no prior)'
        )
    return config


def _build_section(section: str, cls: type, table: Mapping[str, object], origin: str) -> object:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, raw in table.items():
        if key not in hints:
            known = ", ".join(hints)
            raise StreamrecError(f"{origin}: unknown key '{section}.{key}' (known: {known})")
        kwargs[key] = _coerce(raw, hints[key], f"{section}.{key}", origin)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise StreamrecError(f"{origin}: [{section}] {exc}") from exc


def _coerce(raw: object, kind: type, name: str, origin: str) -> object:
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if raw not in choices:
            known = ", ".join(repr(c) for c in choices)
            raise StreamrecError(f"{origin}: {name}={raw!r} is not one of {known}")
        return raw
    try:
        if typing.get_origin(kind) is dict:
            return _as_settings(raw)
        if kind is bool:
            return _as_bool(raw)
        if kind in (int, float) and isinstance(raw, bool):
            raise ValueError("expected a number")
        if kind is int and isinstance(raw, float):
            raise ValueError("expected an integer")
        return kind(raw)
    except ValueError as exc:
        raise StreamrecError(
            f"{origin}: {name}={raw!r} is not a valid {kind.__name__} ({exc})"
        ) from exc


def _as_settings(raw: object) -> dict[str, str]:
    """A TOML table, or ``key=value`` pairs separated by commas (from the environment)."""
    if isinstance(raw, Mapping):
        return {str(key): _toml_scalar(value) for key, value in raw.items()}
    settings = {}
    for pair in filter(None, (part.strip() for part in str(raw).split(","))):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"expected key=value pairs separated by commas, got {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def _toml_scalar(value: object) -> str:
    """A TOML value as Spark takes settings: booleans lower case, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        raise ValueError(f"expected a string, number or boolean, got {value!r}")
    return str(value)


def _as_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


_KAFKA_SECRETS = ("sasl_password", "sasl_oauth_client_secret", "ssl_password")


def render_toml(config: Config, redact_secrets: bool = False) -> str:
    """The effective configuration as TOML, with the resolved service addresses annotated.

    With ``redact_secrets`` (for showing it to a person) passwords are replaced by ``***``;
    without, the output is a complete config file that another process can be started with.
    """
    if redact_secrets:
        hidden = {name: "***" for name in _KAFKA_SECRETS if getattr(config.kafka, name)}
        config = dataclasses.replace(
            config,
            kafka=dataclasses.replace(config.kafka, **hidden),
            redis=dataclasses.replace(config.redis, url=redact_url(config.redis.url)),
            **{
                store: dataclasses.replace(getattr(config, store), url=redact_url(url))
                for store, url in config.store_urls().items()
                if url
            },
            serving=dataclasses.replace(
                config.serving, token="***" if config.serving.token else ""
            ),
        )
    lines = [
        f"# kafka: {_mode(config.kafka_external)} at {config.kafka_bootstrap}",
        f"# redis: {_mode(config.redis_external)} at {redact_url(config.redis_url)}",
        f"# examples: {config.examples_location}",
        f"# models: {config.model_location}",
    ]
    for section in dataclasses.fields(config):
        lines.append(f"\n[{section.name}]")
        for item in dataclasses.fields(getattr(config, section.name)):
            lines.append(
                f"{item.name} = {_toml_value(getattr(getattr(config, section.name), item.name))}"
            )
    return "\n".join(lines) + "\n"


def _mode(external: bool) -> str:
    return "external" if external else "embedded"


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        pairs = (f"{_toml_value(key)} = {_toml_value(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def redact_url(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    password = urlparse(url).password
    return url.replace(f":{password}@", ":***@") if password else url
