"""OAUTHBEARER tokens from a real HTTP token endpoint on loopback: the client credentials
grant as RFC 6749 asks it, one token reused until it nears expiry, and refusals as one line."""

import base64
import json
import threading
import typing
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from streamrec.infra.core.config import load_config
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.storage.adapters.kafka_event_bus import client_settings
from streamrec.infra.storage.adapters.kafka_oauth import ClientCredentialsTokens


class _Endpoint(BaseHTTPRequestHandler):
    issued: typing.ClassVar[list[dict]] = []
    answer: typing.ClassVar[dict | None] = None  # None: a token for each request, valid 100 s
    status = 200

    def do_POST(self):  # the name http.server calls
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        type(self).issued.append({"form": form, "authorization": self.headers["Authorization"]})
        body = self.answer or {"access_token": f"token-{len(self.issued)}", "expires_in": 100}
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    _Endpoint.issued, _Endpoint.answer, _Endpoint.status = [], None, 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()


def test_a_token_is_asked_for_by_the_client_credentials_grant_and_reused(endpoint):
    now = [0.0]
    tokens = ClientCredentialsTokens(
        endpoint, "stream rec", "s3cret", "kafka", clock=lambda: now[0]
    )
    assert [tokens.token() for _ in range(3)] == ["token-1"] * 3
    (asked,) = _Endpoint.issued
    assert asked["form"] == {"grant_type": ["client_credentials"], "scope": ["kafka"]}
    user, secret = base64.b64decode(asked["authorization"].split()[1]).decode().split(":")
    assert (urllib.parse.unquote(user), secret) == ("stream rec", "s3cret")
    now[0] = 79.0
    assert tokens.token() == "token-1"  # still within four fifths of its 100 s
    now[0] = 80.0
    assert tokens.token() == "token-2"


def test_a_refusal_or_an_answer_without_a_token_is_one_line_naming_the_endpoint(endpoint):
    _Endpoint.status, _Endpoint.answer = 401, {"error": "invalid_client"}
    with pytest.raises(StoreUnavailable, match=r"endpoint http://127.0.0.1:\d+/token refused the "
                       r"client: HTTP 401$"):  # fmt: skip
        ClientCredentialsTokens(endpoint, "id", "wrong").token()
    _Endpoint.status, _Endpoint.answer = 200, {"token_type": "Bearer"}
    with pytest.raises(StoreUnavailable, match="sent no access_token"):
        ClientCredentialsTokens(endpoint, "id", "secret").token()


def test_an_unreachable_endpoint_is_one_line():
    tokens = ClientCredentialsTokens("http://127.0.0.1:9/token", "id", "secret", timeout_seconds=2)
    expected = r"^no OAuth token from http://127.0.0.1:9/token: "
    with pytest.raises(StoreUnavailable, match=expected) as error:
        tokens.token()
    assert "\n" not in str(error.value)


def test_every_client_of_a_process_shares_one_provider_and_gets_the_client_certificate(endpoint):
    environ = {
        "STREAMREC_KAFKA_BOOTSTRAP": "b:9093",
        "STREAMREC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMREC_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
        "STREAMREC_KAFKA_SASL_OAUTH_TOKEN_URL": endpoint,
        "STREAMREC_KAFKA_SASL_OAUTH_CLIENT_ID": "id",
        "STREAMREC_KAFKA_SASL_OAUTH_CLIENT_SECRET": "secret",
        "STREAMREC_KAFKA_SSL_CERTFILE": "client.pem",
        "STREAMREC_KAFKA_SSL_KEYFILE": "client.key",
    }
    first, second = (client_settings(load_config(environ=environ)) for _ in range(2))
    assert first["sasl_oauth_token_provider"] is second["sasl_oauth_token_provider"]
    assert "sasl_plain_username" not in first
    assert (first["ssl_certfile"], first["ssl_keyfile"]) == ("client.pem", "client.key")
    assert "ssl_password" not in first  # unset settings are left to kafka-python
    first["sasl_oauth_token_provider"].token()
    second["sasl_oauth_token_provider"].token()
    assert len(_Endpoint.issued) == 1
