"""OAUTHBEARER tokens for the Kafka clients, by the OAuth 2.0 client credentials grant.

Brokers that authenticate by OAUTHBEARER (Confluent Cloud, Amazon MSK with IAM through an
identity provider, Strimzi with Keycloak, ...) take a bearer token that the client gets from
the identity provider's token endpoint (RFC 6749, section 4.4) and must renew before it
expires. Invariant: every client of one process shares one token per endpoint and client id,
reused until four fifths of its lifetime have passed, so opening many clients makes one token
request, and a reconnect never offers a token about to expire. A failed request is one
:class:`~streamrec.infra.core.errors.StoreUnavailable` line naming the endpoint.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from kafka.net.sasl.oauth import AbstractTokenProvider

from streamrec.infra.core.errors import StoreUnavailable

_RENEW_AFTER = 0.8  # of a token's lifetime
_DEFAULT_LIFETIME_SECONDS = 300.0  # when the endpoint does not say (expires_in is optional)
_SHARED: dict[tuple[str, str, str, str], ClientCredentialsTokens] = {}
_SHARED_LOCK = threading.Lock()


class ClientCredentialsTokens(AbstractTokenProvider):
    """Bearer tokens from ``token_url`` for ``client_id``, renewed as they near expiry."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._url, self._scope, self._timeout = token_url, scope, timeout_seconds
        pair = f"{urllib.parse.quote(client_id)}:{urllib.parse.quote(client_secret)}"
        self._authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        with self._lock:
            if not self._token or self._clock() >= self._renew_at:
                asked = self._clock()
                self._token, lifetime = self._requested()
                self._renew_at = asked + _RENEW_AFTER * lifetime
            return self._token

    def _requested(self) -> tuple[str, float]:
        """A new token and its lifetime in seconds."""
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        request = urllib.request.Request(
            self._url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": self._authorization, "Accept": "application/json",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise StoreUnavailable(
                f"the OAuth token endpoint {self._url} refused the client: HTTP {exc.code}"
            ) from exc
        except (OSError, ValueError) as exc:  # unreachable, timed out, or not JSON
            raise StoreUnavailable(f"no OAuth token from {self._url}: {exc}") from exc
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise StoreUnavailable(f"the OAuth token endpoint {self._url} sent no access_token")
        lifetime = answer.get("expires_in", _DEFAULT_LIFETIME_SECONDS)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = _DEFAULT_LIFETIME_SECONDS
        return token, float(lifetime)


def shared_tokens(token_url: str, client_id: str, client_secret: str, scope: str):
    """The process's one token provider for this endpoint and client."""
    key = (token_url, client_id, client_secret, scope)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ClientCredentialsTokens(token_url, client_id, client_secret, scope)
        return _SHARED[key]
