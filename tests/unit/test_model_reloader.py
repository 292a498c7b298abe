"""Hot reload's decisions with a fake registry and fake models: swap only what loads and
answers well, keep the incumbent otherwise, and follow rollbacks."""

from pathlib import Path

import numpy as np

from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage.ports.online_store import HistoryEntry
from streamrec.serving.item_filter import filtered_top_k
from streamrec.serving.item_index import ExactIndex
from streamrec.serving.metrics import ServingMetrics
from streamrec.serving.model_reloader import ModelReloader


class Model:
    def __init__(self, version, query=(1.0, 0.0)):
        self.version = version
        self.item_ids = np.array([f"i{n}" for n in range(30)])
        self.index = ExactIndex(np.random.default_rng(version).normal(size=(30, 2)))
        self.query = np.array(query, np.float32)
        self.users = []
        self.query_path = "compiled"

    def query_embedding(self, user_id, history, request_time_ms):
        self.users.append(user_id)
        return self.query

    def top_k(self, query, k, admitted):
        return filtered_top_k(self.index.search, query, k, self.item_ids, admitted)


class Serving:
    def __init__(self, model):
        self.model = model
        self.recent = [("u1", [HistoryEntry(1, "e", "i3")]), ("u2", [])]

    def recent_requests(self, n):
        return self.recent[:n]


class Registry:
    def __init__(self):
        self.pointer: int | None = 1
        self.broken = False

    def current(self):
        if self.broken:
            raise StreamrecError("current pointer is torn")
        return None if self.pointer is None else ModelVersion(Path(f"/models/{self.pointer}"))


def reloader_with(load, metrics=None):
    registry, serving = Registry(), Serving(Model(1))
    reloader = ModelReloader(registry, serving, 0, warmup_requests=5, load=load, metrics=metrics)
    return reloader, registry, serving


def test_a_promoted_version_is_warmed_up_with_recent_users_then_swapped_in():
    loaded = {}

    def load(version):
        loaded[version.version] = Model(version.version)
        return loaded[version.version]

    reloader, registry, serving = reloader_with(load)
    assert not reloader.follow_pointer()  # the pointer names the version serving
    registry.pointer = 2
    assert reloader.follow_pointer()
    assert serving.model is loaded[2] and loaded[2].users == ["u1", "u2"]
    registry.pointer = 1  # a rollback is followed the same way
    assert reloader.follow_pointer() and serving.model.version == 1


def test_a_version_that_fails_to_load_or_answers_badly_never_serves():
    attempts = []

    def load(version):
        attempts.append(version.version)
        if version.version == 2:
            raise StreamrecError("inconsistent: 9 item ids but 10 embeddings")
        return Model(version.version, query=(np.nan, 0.0))

    metrics = ServingMetrics()
    reloader, registry, serving = reloader_with(load, metrics)
    incumbent = serving.model
    registry.pointer = 2
    assert not reloader.follow_pointer() and not reloader.follow_pointer()
    assert attempts == [2]  # not retried until the pointer moves
    registry.pointer = 3
    assert not reloader.follow_pointer()  # loads, but its queries are not finite
    assert serving.model is incumbent
    assert metrics.model_swaps.labels("refused")._value.get() == 2


def test_an_unreadable_pointer_keeps_the_model():
    reloader, registry, serving = reloader_with(lambda version: Model(version.version))
    registry.broken = True
    assert not reloader.follow_pointer() and serving.model.version == 1
    registry.broken, registry.pointer = False, None
    assert not reloader.follow_pointer() and serving.model.version == 1
