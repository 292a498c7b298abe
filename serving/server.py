"""The API-server role: the gRPC RecommendationService plus standard gRPC health checking."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from streamrec.infra.config import Config
from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.contracts.events import MAX_ID_LENGTH
from streamrec.infra.errors import StoreUnavailable, StreamrecError
from streamrec.infra.ports.online_store import OnlineStore
from streamrec.infra.ports.result_cache import RankedItems, ResultCache
from streamrec.infra.stores import open_model_registry, open_online_store, open_result_cache
from streamrec.serving.retrieval_model import RetrievalModel

log = logging.getLogger(__name__)
SERVICE_NAME = recommend_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name


class RecommendationServicer(recommend_pb2_grpc.RecommendationServiceServicer):
    def __init__(
        self, model: RetrievalModel, online_store: OnlineStore, cache: ResultCache, max_k: int
    ) -> None:
        self.model = model
        self.online_store = online_store
        self.cache = cache
        self.max_k = max_k

    def Recommend(
        self, request: recommend_pb2.RecommendRequest, context: grpc.ServicerContext
    ) -> recommend_pb2.RecommendResponse:
        request_id = uuid.uuid4().hex
        context.set_trailing_metadata((("request-id", request_id),))
        problem = self._invalid(request)
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        model = self.model  # one consistent version for the whole request
        key = f"v{model.version}:{request.k}:{request.user_id}"
        ranked = self._cached(key)
        from_cache = ranked is not None
        if ranked is None:
            ranked = self._rank(model, request, context)
            self._cache(key, ranked)
        log.info(
            "request %s user=%s k=%d cache=%s", request_id, request.user_id, request.k, from_cache
        )
        return recommend_pb2.RecommendResponse(
            items=[
                recommend_pb2.ScoredItem(item_id=item, score=score)
                for item, score in zip(ranked.item_ids, ranked.scores, strict=True)
            ],
            model_version=model.version,
            request_id=request_id,
            from_cache=from_cache,
        )

    def _invalid(self, request: recommend_pb2.RecommendRequest) -> str:
        if not request.user_id.strip():
            return "user_id must be a non-empty string"
        if len(request.user_id) > MAX_ID_LENGTH:
            return f"user_id is longer than {MAX_ID_LENGTH} characters"
        if not 1 <= request.k <= self.max_k:
            return f"k must be between 1 and {self.max_k}, got {request.k}"
        return ""

    def _cached(self, key: str) -> RankedItems | None:
        try:
            return self.cache.get(key)
        except StoreUnavailable as exc:  # the cache is an optimisation: a failure is a miss
            log.warning("result cache read failed: %s", exc)
            return None

    def _cache(self, key: str, ranked: RankedItems) -> None:
        try:
            self.cache.put(key, ranked)
        except StoreUnavailable as exc:
            log.warning("result cache write failed: %s", exc)

    def _rank(
        self,
        model: RetrievalModel,
        request: recommend_pb2.RecommendRequest,
        context: grpc.ServicerContext,
    ) -> RankedItems:
        try:
            history = self.online_store.recent_history(request.user_id, model.history_length)
        except StoreUnavailable as exc:
            log.error("%s", exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return model.recommend(request.user_id, history, request.k, int(time.time() * 1000))


class RankingServer:
    """A started gRPC server: Recommend plus health, on ``host:port`` (port 0 picks one)."""

    def __init__(self, config: Config, model: RetrievalModel) -> None:
        self.servicer = RecommendationServicer(
            model, open_online_store(config), open_result_cache(config), config.serving.max_k
        )
        self.health = health.HealthServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=config.serving.workers))
        recommend_pb2_grpc.add_RecommendationServiceServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"{config.serving.host}:{config.serving.port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise StreamrecError(
                f"cannot listen on {address}: is the port taken? set STREAMREC_SERVING_PORT"
            )
        self.address = f"{config.serving.host}:{self.port}"

    def start(self) -> None:
        self.server.start()
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()  # health says NOT_SERVING while requests drain
        self.server.stop(grace).wait()


def load_latest_model(config: Config) -> RetrievalModel:
    version = open_model_registry(config).current()
    if version is None:
        raise StreamrecError(
            f"no model version serves from {config.model_dir}: run `streamrec train` (it promotes "
            "a version that passes the gate) or `streamrec models promote VERSION`"
        )
    return RetrievalModel(version)


def serve_forever(config: Config) -> None:
    """Loads the newest model, serves until SIGTERM or SIGINT, then drains and stops."""
    open_online_store(config).ping()
    model = load_latest_model(config)
    server = RankingServer(config, model)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    server.start()
    print(f"serving model version {model.version} on {server.address}", flush=True)
    stopping.wait()
    server.stop()
    print("stopped", flush=True)
