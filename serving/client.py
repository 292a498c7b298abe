"""A small client for the ranking API, as app backends (and ``streamrec recommend``) use it."""

from __future__ import annotations

import grpc

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.errors import StreamrecError


class RecommendationClient:
    def __init__(self, target: str, timeout_seconds: float = 5.0) -> None:
        self.target = target
        self.timeout = timeout_seconds
        self._channel = grpc.insecure_channel(target)
        self._stub = recommend_pb2_grpc.RecommendationServiceStub(self._channel)

    def recommend(self, user_id: str, k: int) -> recommend_pb2.RecommendResponse:
        """Calls Recommend; gRPC failures become a :class:`StreamrecError` naming the cause."""
        request = recommend_pb2.RecommendRequest(user_id=user_id, k=k)
        try:
            return self._stub.Recommend(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise StreamrecError(self._describe(exc)) from None

    def _describe(self, exc: grpc.RpcError) -> str:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE and "online store" not in (exc.details() or ""):
            return f"ranking service unreachable at {self.target}; start it with `streamrec serve`"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"ranking service at {self.target} did not answer within {self.timeout}s"
        return f"Recommend failed ({code.name}): {exc.details()}"

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RecommendationClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
