"""Who may call the ranking API: bearer tokens in gRPC metadata, over TLS when configured.

With ``serving.auth_tokens_file`` set (one token per line), every call of the
RecommendationService must carry ``authorization: Bearer <token>`` with one of them, or it is
refused with UNAUTHENTICATED before any work. Health checking and reflection stay open, so
load balancers and probes need no secret. Tokens are compared in constant time, and re-read
when the file changes, so a token can be rotated without a restart.

With ``serving.tls_cert_file`` and ``tls_key_file`` the server speaks TLS only; with
``tls_client_ca_file`` as well, clients must present a certificate that CA signed (mutual TLS).
"""

from __future__ import annotations

import hmac
import threading
from pathlib import Path

import grpc

from streamrec.infra.core.config import ServingConfig
from streamrec.infra.core.errors import StreamrecError
from streamrec.serving.metrics import ServingMetrics

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_SCHEME = "bearer "


class TokenFile:
    """The accepted tokens, read again whenever the file's modification time changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._tokens: tuple[bytes, ...] = ()
        if not self.tokens():  # a missing or empty file is a configuration error, found at start
            raise StreamrecError(f"serving.auth_tokens_file: {path} holds no token")

    def tokens(self) -> tuple[bytes, ...]:
        try:
            stamp = self._path.stat().st_mtime_ns
            with self._lock:
                if stamp != self._stamp:
                    lines = self._path.read_text().splitlines()
                    self._tokens = tuple(t.strip().encode() for t in lines if t.strip())
                    self._stamp = stamp
                return self._tokens
        except OSError as exc:
            raise StreamrecError(
                f"serving.auth_tokens_file: cannot read {self._path}: {exc.strerror}"
            ) from exc

    def accepts(self, token: str) -> bool:
        given = token.encode()
        return any(hmac.compare_digest(given, known) for known in self.tokens())


class BearerTokenAuth(grpc.ServerInterceptor):
    def __init__(self, tokens: TokenFile, metrics: ServingMetrics) -> None:
        self._tokens = tokens
        self._metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            return continuation(handler_call_details)
        header = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if self._valid(header):
            return continuation(handler_call_details)
        self._metrics.requests.labels(method.rsplit("/", 1)[-1], "UNAUTHENTICATED").inc()
        return _REFUSE

    def _valid(self, header: object) -> bool:
        if not isinstance(header, str) or header[: len(_SCHEME)].lower() != _SCHEME:
            return False
        return self._tokens.accepts(header[len(_SCHEME) :].strip())


def _refuse(request: object, context: grpc.ServicerContext) -> None:
    context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "missing or unknown bearer token: send metadata 'authorization: Bearer <token>'",
    )


_REFUSE = grpc.unary_unary_rpc_method_handler(_refuse)


def server_credentials(serving: ServingConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the configured PEM files, or None for plaintext."""
    if not (serving.tls_cert_file or serving.tls_key_file):
        return None
    if not (serving.tls_cert_file and serving.tls_key_file):
        raise StreamrecError("serving.tls_cert_file and serving.tls_key_file go together")
    chain = (
        _read(serving.tls_key_file, "tls_key_file"),
        _read(serving.tls_cert_file, "tls_cert_file"),
    )
    client_ca = serving.tls_client_ca_file
    return grpc.ssl_server_credentials(
        [chain],
        root_certificates=_read(client_ca, "tls_client_ca_file") if client_ca else None,
        require_client_auth=bool(client_ca),
    )


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise StreamrecError(f"serving.{key}: cannot read {path}: {exc.strerror}") from exc
