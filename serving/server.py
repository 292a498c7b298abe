"""The API-server role: the gRPC RecommendationService, health checking and reflection."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from streamrec.infra.config import Config, ServingConfig
from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.errors import StreamrecError
from streamrec.infra.stores import open_model_registry, open_online_store, open_result_cache
from streamrec.serving.model_reloader import ModelReloader
from streamrec.serving.recommender import (
    CACHE,
    FALLBACK,
    MODEL,
    Answer,
    NothingToServe,
    Recommender,
)
from streamrec.serving.request_checks import (
    MAX_REQUEST_ID_LENGTH,
    BadRequest,
    rank_candidates,
    recommend_call,
)
from streamrec.serving.retrieval_model import RetrievalModel

log = logging.getLogger(__name__)
SERVICE_NAME = recommend_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name
_SOURCES = {
    MODEL: recommend_pb2.SOURCE_MODEL,
    CACHE: recommend_pb2.SOURCE_CACHE,
    FALLBACK: recommend_pb2.SOURCE_FALLBACK,
}


class RecommendationServicer(recommend_pb2_grpc.RecommendationServiceServicer):
    """gRPC in and out around the :class:`Recommender`: statuses, request ids and logs."""

    def __init__(self, recommender: Recommender, limits: ServingConfig) -> None:
        self.recommender = recommender
        self.limits = limits

    def Recommend(
        self, request: recommend_pb2.RecommendRequest, context: grpc.ServicerContext
    ) -> recommend_pb2.RecommendResponse:
        request_id = _request_id(request.request_id, context)
        started = time.perf_counter()
        call = _checked(lambda: recommend_call(request, self.limits), context)
        answer = _answered(lambda: self.recommender.recommend(call), context)
        _log_request("Recommend", request_id, request.user_id, answer, started, k=call.k)
        return recommend_pb2.RecommendResponse(
            items=_scored(answer.items),
            model_version=answer.model_version,
            request_id=request_id,
            from_cache=answer.source == CACHE,
            source=_SOURCES[answer.source],
            fallback_reason=answer.fallback_reason,
        )

    def Rank(
        self, request: recommend_pb2.RankRequest, context: grpc.ServicerContext
    ) -> recommend_pb2.RankResponse:
        request_id = _request_id(request.request_id, context)
        started = time.perf_counter()
        candidates = _checked(lambda: rank_candidates(request, self.limits), context)
        answer = _answered(lambda: self.recommender.rank(request.user_id, candidates), context)
        _log_request("Rank", request_id, request.user_id, answer, started, k=len(candidates))
        return recommend_pb2.RankResponse(
            items=_scored(answer.items),
            unknown_item_ids=answer.unknown_item_ids,
            model_version=answer.model_version,
            request_id=request_id,
            source=_SOURCES[answer.source],
            fallback_reason=answer.fallback_reason,
        )


def _request_id(given: str, context: grpc.ServicerContext) -> str:
    request_id = given if given and len(given) <= MAX_REQUEST_ID_LENGTH else uuid.uuid4().hex
    context.set_trailing_metadata((("request-id", request_id),))
    return request_id


def _checked(check, context: grpc.ServicerContext):
    try:
        return check()
    except BadRequest as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


def _answered(work, context: grpc.ServicerContext) -> Answer:
    """Runs the request unless its deadline has passed, before or after."""
    _honour_deadline(context)
    try:
        answer = work()
    except NothingToServe as exc:
        log.error("%s", exc)
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    _honour_deadline(context)
    return answer


def _honour_deadline(context: grpc.ServicerContext) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the request's deadline passed")


def _scored(items: list[tuple[str, float]]) -> list[recommend_pb2.ScoredItem]:
    return [recommend_pb2.ScoredItem(item_id=item, score=score) for item, score in items]


def _log_request(
    rpc: str, request_id: str, user_id: str, answer: Answer, started: float, k: int
) -> None:
    """One JSON line per request, carrying its request_id."""
    if log.isEnabledFor(logging.INFO):
        record = {
            "rpc": rpc,
            "request_id": request_id,
            "user_id": user_id,
            "k": k,
            "items": len(answer.items),
            "source": answer.source,
            "fallback_reason": answer.fallback_reason,
            "model_version": answer.model_version,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        }
        log.info("%s", json.dumps(record))


class RankingServer:
    """A started gRPC server: Recommend and Rank, health and reflection, on ``host:port``
    (port 0 picks one)."""

    def __init__(self, config: Config, model: RetrievalModel) -> None:
        self.recommender = Recommender(
            config, model, open_online_store(config), open_result_cache(config)
        )
        self.servicer = RecommendationServicer(self.recommender, config.serving)
        self.reloader = ModelReloader(
            open_model_registry(config),
            self.recommender,
            config.serving.reload_seconds,
            config.serving.warmup_requests,
        )
        self.health = health.HealthServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=config.serving.workers))
        recommend_pb2_grpc.add_RecommendationServiceServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
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
        self.recommender.prefetch()
        self.server.start()
        self.reloader.start()
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 5.0) -> None:
        self.reloader.stop()
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
