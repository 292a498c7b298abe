"""Hot reload under load: the server follows promotions and rollbacks with no failed request,
and a version that cannot load never replaces the one serving."""

import dataclasses
import shutil
import threading
import time

import grpc
import pytest

from streamrec.infra.contracts import recommend_pb2, recommend_pb2_grpc
from streamrec.infra.contracts.export_layout import write_checksums
from streamrec.infra.storage import open_model_registry, open_online_store
from streamrec.infra.storage.ports.online_store import HistoryEntry
from streamrec.serving.retrieval_model import RetrievalModel
from streamrec.serving.server import RankingServer

pytestmark = pytest.mark.slow  # model swaps under load

USERS = [f"u-{n:06d}" for n in range(8)]


class Load:
    """Clients calling Recommend back to back, recording each answer's version or error."""

    def __init__(self, address: str, clients: int = 4) -> None:
        self.address = address
        self.versions: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(clients)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self, n: int) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = recommend_pb2_grpc.RecommendationServiceStub(channel)
            while not self._stop.is_set():
                user = USERS[(n + len(self.versions)) % len(USERS)]
                try:
                    reply = stub.Recommend(
                        recommend_pb2.RecommendRequest(user_id=user, k=10), timeout=10
                    )
                    self.versions.append(reply.model_version)
                except grpc.RpcError as exc:
                    self.errors.append(f"{exc.code().name}: {exc.details()}")

    def wait_for(self, version: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        seen = len(self.versions)
        while time.monotonic() < deadline:
            if version in self.versions[seen:][-20:]:
                return
            time.sleep(0.1)
        raise AssertionError(f"version {version} never served; last {self.versions[-5:]}")


@pytest.fixture
def served(trained_copy):
    config = dataclasses.replace(
        trained_copy,
        serving=dataclasses.replace(trained_copy.serving, port=0, reload_seconds=0.2),
        redis=dataclasses.replace(trained_copy.redis, key_prefix="test-serving-reload"),
    )
    open_online_store(config).append_history(
        [(user, HistoryEntry(1, f"{user}-e", "i-000003", "view")) for user in USERS]
    )
    registry = open_model_registry(config)
    running = RankingServer(config, RetrievalModel(registry.current()))
    running.start()
    yield config, registry, running
    running.stop(grace=1)


def _copy_version(config, source: int, target: int):
    shutil.copytree(config.model_dir / str(source), config.model_dir / str(target))
    return config.model_dir / str(target)


def test_promotion_and_rollback_swap_versions_under_load_with_no_failed_request(served):
    config, registry, running = served
    _copy_version(config, 1, 2)
    with Load(running.address) as load:
        load.wait_for(1)
        registry.promote(2, "test")
        load.wait_for(2)
        registry.rollback()
        load.wait_for(1)
    assert load.errors == []
    assert len(load.versions) > 50
    first_two = load.versions.index(2)
    assert set(load.versions[first_two:]) <= {1, 2}


def test_a_version_that_cannot_load_never_serves_and_the_incumbent_keeps_serving(served):
    config, registry, running = served
    broken = _copy_version(config, 1, 3)
    ids_file = broken / "item_index" / "item_ids.txt"
    ids = ids_file.read_text().splitlines()
    ids_file.write_text("\n".join(ids[:-1]) + "\n")  # one embedding too many
    write_checksums(broken)  # intact as files: it passes the promotion's checks
    with Load(running.address, clients=2) as load:
        registry.promote(3, "test")
        time.sleep(2)  # ten looks at the pointer
        _copy_version(config, 1, 4)
        registry.promote(4, "test")
        load.wait_for(4)
    assert load.errors == []
    assert 3 not in load.versions
