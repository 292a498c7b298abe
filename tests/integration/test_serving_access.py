"""Access to the ranking API over real gRPC: bearer tokens, TLS with client certificates,
and fuzzed requests, which must all be refused cleanly without hurting the server."""

import dataclasses
import os
import random
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.core.errors import StreamrecError
from streamrec.serving.client import RecommendationClient
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import SERVICE_NAME, RankingServer
from tests.conftest import free_port


@pytest.fixture
def serve(trained):
    config, _, result = trained
    started = []

    def start(**serving):
        own = dataclasses.replace(
            config, serving=dataclasses.replace(config.serving, port=0, **serving)
        )
        running = RankingServer(own, RetrievalModel(result.version))
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop(grace=0)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all from the CA."""
    root = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=streamrec test CA", cwd=root)  # fmt: skip
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={name}", cwd=root)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext",
                 cwd=root)  # fmt: skip
    return root


def test_only_known_bearer_tokens_may_call_and_health_stays_open(serve, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("first-secret\n")
    running = serve(auth_tokens_file=str(tokens))
    for token, works in (("", False), ("wrong", False), ("first-secret", True)):
        with RecommendationClient(running.address, token=token) as client:
            if works:
                assert len(client.recommend("u-000001", 3).items) == 3
            else:
                with pytest.raises(StreamrecError, match=r"UNAUTHENTICATED.*bearer token"):
                    client.recommend("u-000001", 3)
    with grpc.insecure_channel(running.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    tokens.write_text("rotated-secret\n")
    os.utime(tokens, ns=(1, 10**18))  # a new modification time, whatever the clock's resolution
    with RecommendationClient(running.address, token="rotated-secret") as client:
        assert len(client.rank("u-000001", ["i-000001"]).items) == 1
    old = RecommendationClient(running.address, token="first-secret")
    with old, pytest.raises(StreamrecError, match="UNAUTHENTICATED"):
        old.recommend("u-000001", 3)


def test_an_empty_token_file_is_refused_at_start(serve, tmp_path):
    (tmp_path / "tokens").write_text("\n")
    with pytest.raises(StreamrecError, match="holds no token"):
        serve(auth_tokens_file=str(tmp_path / "tokens"))


def test_tls_with_client_certificates(serve, certificates):
    running = serve(
        tls_cert_file=str(certificates / "server.pem"),
        tls_key_file=str(certificates / "server.key"),
        tls_client_ca_file=str(certificates / "ca.pem"),
    )
    request = recommend_pb2.RecommendRequest(user_id="u-000001", k=3)
    ca = (certificates / "ca.pem").read_bytes()
    with_cert = grpc.ssl_channel_credentials(
        ca, (certificates / "client.key").read_bytes(), (certificates / "client.pem").read_bytes()
    )
    with grpc.secure_channel(running.address, with_cert) as channel:
        stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
        assert len(stub.Recommend(request, timeout=10).items) == 3
    for channel in (
        grpc.secure_channel(running.address, grpc.ssl_channel_credentials(ca)),  # no cert
        grpc.insecure_channel(running.address),  # plaintext
    ):
        with channel, pytest.raises(grpc.RpcError) as error:
            recommend_pb2_grpc.RecommendationServiceStub(channel).Recommend(request, timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_client_talks_tls_with_the_configured_ca(serve, certificates):
    running = serve(
        tls_cert_file=str(certificates / "server.pem"),
        tls_key_file=str(certificates / "server.key"),
    )
    with RecommendationClient(running.address, tls_ca_file=str(certificates / "ca.pem")) as c:
        assert len(c.recommend("u-000001", 2).items) == 2


def _fuzzed(rng: random.Random) -> bytes:
    """Request bytes: random fields of the right types, or bytes that are no message at all."""
    text = lambda: "".join(  # noqa: E731
        rng.choice(["", "u", " ", "\x00", "é", "x" * rng.randint(0, 600), "\ud7ff"])
        for _ in range(rng.randint(0, 3))
    )
    kind = rng.random()
    if kind < 0.2:
        return rng.randbytes(rng.randint(0, 200))
    if kind < 0.3:
        return b"\x0a\x04\xff\xfe\xfd\xfc"  # user_id with invalid UTF-8
    request = recommend_pb2.RecommendRequest(
        user_id=text(),
        k=rng.choice([-5, 0, 1, 10, 500, 501, 2**31 - 1]),
        exclude_item_ids=[text() for _ in range(rng.choice([0, 3, 1500]))],
        include_categories=[text() for _ in range(rng.choice([0, 2, 70]))],
        context={text() or "k": text() for _ in range(rng.choice([0, 2, 40]))},
        request_id=text(),
    )
    return request.SerializeToString()


def test_thousands_of_fuzzed_requests_get_invalid_argument_and_the_server_keeps_answering(serve):
    running = serve()
    rng = random.Random(8)
    codes = {}
    with grpc.insecure_channel(running.address) as channel:
        raw = channel.unary_unary(f"/{SERVICE_NAME}/Recommend")
        for _ in range(2000):
            try:
                raw(_fuzzed(rng), timeout=10)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            codes[code] = codes.get(code, 0) + 1
        stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
        reply = stub.Recommend(recommend_pb2.RecommendRequest(user_id="u-000002", k=5), timeout=10)
    assert set(codes) <= {"OK", "INVALID_ARGUMENT"}, codes
    assert codes["INVALID_ARGUMENT"] > 1000
    assert len(reply.items) == 5


def _answered(running) -> float:
    labels = {"rpc": "Recommend", "code": "OK"}
    return running.metrics.registry.get_sample_value("streamrec_serving_requests_total", labels)


def test_a_client_of_several_servers_spreads_calls_and_retries_one_that_is_down(serve):
    first, second = serve(), serve()
    gone = f"127.0.0.1:{free_port()}"  # nothing listens there: a replica that died
    targets = ",".join([first.address, second.address, gone])
    with RecommendationClient(targets) as client:
        replies = [client.recommend(f"u-{n:06d}", 3) for n in range(30)]
    assert all(len(r.items) == 3 for r in replies)  # none failed, the dead address included
    assert _answered(first) >= 8 and _answered(second) >= 8  # round robin over the live two
    assert _answered(first) + _answered(second) == 30
