"""Hot reload: the server follows the registry's ``current`` pointer without a restart.

A background thread looks at the pointer every ``serving.reload_seconds``. When it names
another version (a promotion or a rollback), the thread loads that version beside the one
serving, warms it up with the requests of users served lately (the first calls of a
SavedModel trace and allocate, which would otherwise land on real requests), checks its
answers, and only then swaps it in: one attribute assignment, which requests read once each,
so no request sees half of a swap and none fails because of one. A version that fails to
load or to warm up is never swapped in; the incumbent keeps serving, and that version is not
tried again until the pointer moves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage.ports.model_registry import ModelRegistry
from streamrec.serving.item_filter import ItemFilter
from streamrec.serving.metrics import ServingMetrics
from streamrec.serving.recommender import Recommender
from streamrec.serving.retrieval_model import RetrievalModel

log = logging.getLogger(__name__)
_WARMUP_K = 10


class ModelReloader:
    def __init__(
        self,
        registry: ModelRegistry,
        recommender: Recommender,
        interval: float,
        warmup_requests: int,
        load: Callable[[ModelVersion], RetrievalModel] = RetrievalModel,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self._registry = registry
        self._recommender = recommender
        self._interval = interval
        self._warmup_requests = warmup_requests
        self._load = load
        self._metrics = metrics
        self._refused: int | None = None  # the version that failed; not retried until it moves
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-reloader", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.follow_pointer()

    def follow_pointer(self) -> bool:
        """Swaps in the version the pointer names, if it is another one and it works; True if
        it swapped."""
        try:
            current = self._registry.current()
        except StreamrecError as exc:
            log.error("cannot read the registry's current pointer, keeping the model: %s", exc)
            return False
        serving = self._recommender.model.version
        if current is None or current.version in (serving, self._refused):
            return False
        started = time.monotonic()
        try:
            candidate = self._load(current)
            self._warm_up(candidate)
        except Exception as exc:  # whatever breaks a version, the incumbent keeps serving
            self._refused = current.version
            self._count("refused")
            log.error("model version %d not swapped in, %d keeps serving: %s", current.version,
                      serving, exc)  # fmt: skip
            return False
        self._recommender.model = candidate
        self._refused = None
        self._count("swapped")
        if self._metrics is not None:
            self._metrics.record_model(candidate.version, candidate.index_recall)
        log.warning(
            "model version %d now serves (was %d; loaded and warmed up in %.1fs; query tower: %s)",
            candidate.version, serving, time.monotonic() - started, candidate.query_path,
        )  # fmt: skip
        return True

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.model_swaps.labels(outcome).inc()

    def _warm_up(self, candidate: RetrievalModel) -> None:
        """Answers recent users' requests with the candidate; raises if any answer is wrong."""
        recent = self._recommender.recent_requests(self._warmup_requests) or [("", [])]
        now_ms = int(time.time() * 1000)
        for user_id, history in recent:
            query = candidate.query_embedding(user_id or "warm-up", history, now_ms)
            if not np.all(np.isfinite(query)):
                raise StreamrecError(f"its query embedding for user {user_id!r} is not finite")
            top = candidate.top_k(query, _WARMUP_K, ItemFilter())
            if len(top) != min(_WARMUP_K, len(candidate.item_ids)):
                raise StreamrecError(f"it returned {len(top)} items for user {user_id!r}")
