"""A small client for the ranking API, as app backends (and ``streamrec recommend``) use it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import grpc

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StreamrecError

T = TypeVar("T")

# Client-side balancing, as gRPC does it: each call goes to the next server that the target
# resolves to (a headless Service's pods, or the addresses of "ip:port,ip:port"), and a call
# that fails with UNAVAILABLE (a server gone, or never reached) is tried once more, on another
# server when there is one. Both calls are reads, so trying again is safe.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "streamrec.serving.v1.RecommendationService"}],
            "retryPolicy": {
                "maxAttempts": 2,
                "initialBackoff": "0.01s",
                "maxBackoff": "0.1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


class RecommendationClient:
    """``target``: ``host:port``, ``dns:///name:port`` (every address the name resolves to),
    or ``ip:port,ip:port``: calls are spread over the servers (:data:`SERVICE_CONFIG`).
    ``token``: the bearer token to send, if the server wants one; ``tls_ca_file``: the CA
    that signed the server's certificate, to talk TLS (empty: plaintext)."""

    def __init__(
        self, target: str, timeout_seconds: float = 5.0, token: str = "", tls_ca_file: str = ""
    ) -> None:
        self.target = target
        self.timeout = timeout_seconds
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if tls_ca_file:
            try:
                ca = Path(tls_ca_file).expanduser().read_bytes()
            except OSError as exc:
                message = f"serving.tls_ca_file: cannot read {tls_ca_file}: {exc.strerror}"
                raise StreamrecError(message) from exc
            credentials = grpc.ssl_channel_credentials(root_certificates=ca)
            self._channel = grpc.secure_channel(_resolvable(target), credentials, _OPTIONS)
        else:
            self._channel = grpc.insecure_channel(_resolvable(target), _OPTIONS)
        self._stub = recommend_pb2_grpc.RecommendationServiceStub(self._channel)

    @classmethod
    def from_config(
        cls, config: Config, target: str | None = None, timeout_seconds: float = 5.0
    ) -> RecommendationClient:
        """A client of the configured server, with the configured token and CA."""
        serving = config.serving
        return cls(
            target or f"{serving.host}:{serving.port}",
            timeout_seconds,
            token=serving.token,
            tls_ca_file=serving.tls_ca_file,
        )

    def recommend(
        self,
        user_id: str,
        k: int,
        exclude_item_ids: Sequence[str] = (),
        include_categories: Sequence[str] = (),
        exclude_categories: Sequence[str] = (),
        context: Mapping[str, str] | None = None,
        request_id: str = "",
    ) -> recommend_pb2.RecommendResponse:
        """Calls Recommend; gRPC failures become a :class:`StreamrecError` naming the cause."""
        request = recommend_pb2.RecommendRequest(
            user_id=user_id,
            k=k,
            exclude_item_ids=exclude_item_ids,
            include_categories=include_categories,
            exclude_categories=exclude_categories,
            context=context or {},
            request_id=request_id,
        )
        return self._call("Recommend", self._stub.Recommend, request)

    def rank(
        self,
        user_id: str,
        candidate_item_ids: Sequence[str],
        request_id: str = "",
        context: Mapping[str, str] | None = None,
    ) -> recommend_pb2.RankResponse:
        """Calls Rank: the candidates scored for the user, best first."""
        request = recommend_pb2.RankRequest(
            user_id=user_id,
            candidate_item_ids=candidate_item_ids,
            request_id=request_id,
            context=context or {},
        )
        return self._call("Rank", self._stub.Rank, request)

    def _call(self, name: str, method: Callable[..., T], request: object) -> T:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise StreamrecError(self._describe(name, exc)) from exc

    def _describe(self, name: str, exc: grpc.RpcError) -> str:
        code = exc.code()
        answered = any(key == "request-id" for key, _ in exc.trailing_metadata() or ())
        if code == grpc.StatusCode.UNAVAILABLE and not answered:  # never reached the service
            return f"ranking service unreachable at {self.target}; start it with `streamrec serve`"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"ranking service at {self.target} did not answer within {self.timeout}s"
        return f"{name} failed ({code.name}): {exc.details()}"

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RecommendationClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_OPTIONS = [("grpc.service_config", json.dumps(SERVICE_CONFIG)), ("grpc.enable_retries", 1)]


def _resolvable(target: str) -> str:
    """A list of addresses in gRPC's naming: its static ``ipv4:`` or ``ipv6:`` resolver."""
    if "," not in target or target.startswith(("ipv4:", "ipv6:", "dns:")):
        return target
    return ("ipv6:" if target.startswith("[") else "ipv4:") + target
