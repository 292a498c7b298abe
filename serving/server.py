"""The API-server role: the gRPC RecommendationService, health checking and reflection."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import faiss
import grpc
import tensorflow as tf
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from threadpoolctl import threadpool_limits

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.contracts.events import MAX_ID_LENGTH
from streamrec.infra.core.config import Config, ServingConfig
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_model_registry, open_online_store, open_result_cache
from streamrec.serving.access_control import BearerTokenAuth, TokenFile, server_credentials
from streamrec.serving.metrics import ServingMetrics
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
    BadRequest,
    lenient_parser,
    rank_candidates,
    recommend_call,
    valid_request_id,
)
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server_processes import SUPERVISOR_PID_ENV

log = logging.getLogger(__name__)
SERVICE_NAME = recommend_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name
_SOURCES = {
    MODEL: recommend_pb2.SOURCE_MODEL,
    CACHE: recommend_pb2.SOURCE_CACHE,
    FALLBACK: recommend_pb2.SOURCE_FALLBACK,
}


class RecommendationServicer(recommend_pb2_grpc.RecommendationServiceServicer):
    """gRPC in and out around the :class:`Recommender`: statuses, request ids, logs, metrics."""

    def __init__(
        self, recommender: Recommender, limits: ServingConfig, metrics: ServingMetrics
    ) -> None:
        self.recommender = recommender
        self.limits = limits
        self.metrics = metrics

    def Recommend(
        self, request: recommend_pb2.RecommendRequest, context: grpc.ServicerContext
    ) -> recommend_pb2.RecommendResponse:
        with self._observed("Recommend", request, context) as seen:
            call = _checked(lambda: recommend_call(request, self.limits), context)
            seen.answer = _answered(lambda: self.recommender.recommend(call), context)
            return recommend_pb2.RecommendResponse(
                items=_scored(seen.answer),
                model_version=seen.answer.model_version,
                request_id=seen.request_id,
                from_cache=seen.answer.source == CACHE,
                source=_SOURCES[seen.answer.source],
                fallback_reason=seen.answer.fallback_reason,
            )

    def Rank(
        self, request: recommend_pb2.RankRequest, context: grpc.ServicerContext
    ) -> recommend_pb2.RankResponse:
        with self._observed("Rank", request, context) as seen:
            candidates = _checked(lambda: rank_candidates(request, self.limits), context)
            seen.answer = _answered(
                lambda: self.recommender.rank(request.user_id, candidates, request.context),
                context,
            )
            return recommend_pb2.RankResponse(
                items=_scored(seen.answer),
                unknown_item_ids=seen.answer.unknown_item_ids,
                model_version=seen.answer.model_version,
                request_id=seen.request_id,
                source=_SOURCES[seen.answer.source],
                fallback_reason=seen.answer.fallback_reason,
            )

    @contextlib.contextmanager
    def _observed(
        self, rpc: str, request: object, context: grpc.ServicerContext
    ) -> Iterator[_Request]:
        """Times the request, then logs and counts it however it ended."""
        seen = _Request(_request_id(request.request_id, context))
        started, failed = time.perf_counter(), False
        try:
            yield seen
        except Exception:  # an abort (its code is set) or a bug (UNKNOWN)
            failed = True
            raise
        finally:
            status = context.code()
            code = status.name if status else ("UNKNOWN" if failed else "OK")
            seconds = time.perf_counter() - started
            answer = seen.answer
            version = answer.model_version if answer else self.recommender.model.version
            source, reason = (answer.source, answer.fallback_reason) if answer else ("", "")
            self.metrics.record_request(rpc, code, seconds, version, source, reason)
            user_id = request.user_id[:MAX_ID_LENGTH]  # a refused one may be huge
            _log_request(rpc, seen.request_id, user_id, code, answer, seconds)


@dataclass
class _Request:
    request_id: str
    answer: Answer | None = None


def _request_id(given: str, context: grpc.ServicerContext) -> str:
    request_id = given if given and valid_request_id(given) else uuid.uuid4().hex
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


def _scored(answer: Answer) -> list[recommend_pb2.ScoredItem]:
    explored = answer.explored
    return [
        recommend_pb2.ScoredItem(item_id=item, score=score, explored=item in explored)
        for item, score in answer.items
    ]


def _log_request(
    rpc: str, request_id: str, user_id: str, code: str, answer: Answer | None, seconds: float
) -> None:
    """One JSON line per request, carrying its request_id; warnings for failed ones."""
    level = logging.INFO if code == "OK" else logging.WARNING
    if log.isEnabledFor(level):
        record = {"rpc": rpc, "request_id": request_id, "user_id": user_id, "code": code,
                  "ms": round(seconds * 1000, 2)}  # fmt: skip
        if answer is not None:
            record |= {"items": len(answer.items), "source": answer.source,
                       "fallback_reason": answer.fallback_reason,
                       "model_version": answer.model_version}  # fmt: skip
        log.log(level, "%s", json.dumps(record))


class RankingServer:
    """A started gRPC server: Recommend and Rank, health and reflection, on ``host:port``
    (port 0 picks one)."""

    def __init__(self, config: Config, model: RetrievalModel) -> None:
        self.metrics_port = config.serving.metrics_port
        self.metrics = ServingMetrics()
        self.metrics.record_model(model.version, model.index_recall)
        budgeted = config.with_request_budget()
        self.recommender = Recommender(
            config, model, open_online_store(budgeted), open_result_cache(budgeted)
        )
        self.servicer = RecommendationServicer(self.recommender, config.serving, self.metrics)
        self.reloader = ModelReloader(
            open_model_registry(config),
            self.recommender,
            config.serving.reload_seconds,
            config.serving.warmup_requests,
            metrics=self.metrics,
        )
        self.health = health.HealthServicer()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.serving.workers),
            interceptors=_interceptors(config.serving, self.metrics),
        )
        # Registered, not generic: gRPC's core matches the method, no Python lookup per call.
        self.server.add_registered_method_handlers(SERVICE_NAME, _method_handlers(self.servicer))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        address = f"{config.serving.host}:{config.serving.port}"
        credentials = server_credentials(config.serving)
        try:
            if credentials is None:
                self.port = self.server.add_insecure_port(address)
            else:
                self.port = self.server.add_secure_port(address, credentials)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise StreamrecError(
                f"cannot listen on {address}: is the port taken? set STREAMREC_SERVING_PORT"
            )
        self.address = f"{config.serving.host}:{self.port}"

    def start(self) -> None:
        if self.metrics_port:
            self.metrics.serve(self.metrics_port)
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
            f"no model version serves from {config.model_location}: run `streamrec train` (it "
            "promotes a version that passes the gate) or `streamrec models promote VERSION`"
        )
    return RetrievalModel(version)


def serve_forever(config: Config, say: Callable[[str], object] = log.info) -> None:
    """Loads the newest model, serves until SIGTERM or SIGINT, then drains and stops. ``say``
    gets the line that it serves, once it accepts requests, and "stopped" at the end."""
    open_online_store(config).ping()
    _compute_threads(config.serving)
    model = load_latest_model(config)
    server = RankingServer(config, model)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    _stop_with_supervisor(stopping)
    server.start()
    say(f"serving model version {model.version} on {server.address} (query tower: "
        f"{model.query_path})")  # fmt: skip
    stopping.wait()
    server.stop()
    say("stopped")


def _stop_with_supervisor(stopping: threading.Event) -> None:
    """A process the supervisor started (:mod:`.server_processes`) stops when the supervisor is
    gone, even killed with kill -9, instead of serving on as an orphan."""
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    if not supervisor:
        return

    def watch() -> None:
        while not stopping.wait(1.0):
            if os.getppid() != int(supervisor):
                log.warning("the supervisor (pid %s) is gone; stopping", supervisor)
                stopping.set()

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _compute_threads(serving: ServingConfig) -> None:
    """Sizes TensorFlow's, BLAS's and faiss's thread pools; TensorFlow's only before its
    first op."""
    threads = serving.threads_per_request
    threadpool_limits(threads)
    faiss.omp_set_num_threads(threads)
    try:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError as exc:
        log.warning("TensorFlow's thread pools keep their sizes: %s", exc)


def _interceptors(serving: ServingConfig, metrics: ServingMetrics) -> list[grpc.ServerInterceptor]:
    if not serving.auth_tokens_file:
        return []
    return [BearerTokenAuth(TokenFile(Path(serving.auth_tokens_file).expanduser()), metrics)]


def _method_handlers(servicer: RecommendationServicer) -> dict[str, grpc.RpcMethodHandler]:
    """The service's methods, as the generated code registers them except that requests are
    parsed leniently: bytes that are not the message reach the servicer, which refuses them
    with INVALID_ARGUMENT instead of gRPC's INTERNAL."""

    def method(handler, request: type, response: type) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            handler,
            request_deserializer=lenient_parser(request),
            response_serializer=response.SerializeToString,
        )

    return {
        "Recommend": method(
            servicer.Recommend, recommend_pb2.RecommendRequest, recommend_pb2.RecommendResponse
        ),
        "Rank": method(servicer.Rank, recommend_pb2.RankRequest, recommend_pb2.RankResponse),
    }
