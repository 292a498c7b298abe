"""The query tower of a version as TensorFlow Lite compiled it (``query_tower.tflite``).

Computing a query embedding through the SavedModel signature costs about 0.8 ms here, most of
it TensorFlow's per-call overhead; the compiled tower costs about 0.06 ms. It starts after the
string lookups (TensorFlow Lite has none), so this class does them as
:mod:`streamrec.infra.contracts.query_inputs` defines, and a model that loads it checks it
against the signature before serving with it (:func:`agrees_with`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from streamrec.infra.contracts.query_inputs import (
    CONTEXT_BUCKETS,
    CONTEXT_PADDING,
    FIRST_ITEM,
    ITEM_PADDING,
    MAX_CONTEXT_TOKENS,
    TYPE_IDS,
    TYPE_PADDING,
    UNKNOWN_GAP,
    UNKNOWN_ITEM,
    event_type_index,
    history_gaps,
    padded,
)
from streamrec.infra.storage.ports.online_store import HistoryEntry

TOLERANCE = 1e-5
_MEMO_LIMIT = 100_000  # distinct context tokens remembered; contexts take few values

# (user id, history most recent first, request time ms, context tokens) -> query [dim]
QueryFunction = Callable[[str, Sequence[HistoryEntry], int, Sequence[str]], np.ndarray]


class CompiledQueryTower:
    """``query_tower.tflite`` behind the same call as the signature. An interpreter runs one
    call at a time, so each serving thread gets its own."""

    def __init__(self, model: bytes, item_ids: Sequence[str], history_length: int) -> None:
        self._model = model
        self._items = {item: FIRST_ITEM + row for row, item in enumerate(item_ids)}
        self._length = history_length
        self._buckets: dict[str, int] = {}
        self._local = threading.local()
        self._runner()  # a file TensorFlow Lite cannot read fails here, at load

    def __call__(
        self,
        user_id: str,
        history: Sequence[HistoryEntry],
        request_time_ms: int,
        context: Sequence[str] = (),
    ) -> np.ndarray:
        """As the signature; the towers streamrec trains do not read ``user_id``."""
        entries = history[: self._length]
        inputs = {
            "items": padded([self._items.get(e.item_id, UNKNOWN_ITEM) for e in entries],
                            self._length, ITEM_PADDING),
            "gaps": padded(history_gaps([e.timestamp for e in entries], request_time_ms),
                           self._length, UNKNOWN_GAP),
            "types": padded([event_type_index(e.event_type) for e in entries], self._length,
                            TYPE_IDS[TYPE_PADDING]),
            "contexts": padded(self._context_buckets(context), MAX_CONTEXT_TOKENS,
                               CONTEXT_PADDING),
        }  # fmt: skip
        (embedding,) = self._runner()(**inputs).values()
        return embedding[0]

    def _runner(self) -> Callable:
        runner = getattr(self._local, "runner", None)
        if runner is None:
            interpreter = Interpreter(model_content=self._model, num_threads=1)
            interpreter.allocate_tensors()
            runner = self._local.runner = interpreter.get_signature_runner()
        return runner

    def _context_buckets(self, context: Sequence[str]) -> list[int]:
        tokens = [token for token in context[:MAX_CONTEXT_TOKENS] if token]
        missing = [token for token in tokens if token not in self._buckets]
        if missing:
            if len(self._buckets) > _MEMO_LIMIT:
                self._buckets = {}
            found = tf.strings.to_hash_bucket_fast(missing, CONTEXT_BUCKETS - 1).numpy() + 1
            self._buckets |= dict(zip(missing, found.tolist(), strict=True))
        return [self._buckets[token] for token in tokens]


def agrees_with(compiled: QueryFunction, reference: QueryFunction, item_ids: Sequence[str],
                history_length: int) -> float:  # fmt: skip
    """The largest difference between two query functions over probe requests: histories of
    every length over known and unknown items and event types, with and without a context."""
    now = 1_700_000_000_000
    known = list(item_ids[: 2 * history_length]) or ["probe-item"]
    worst = 0.0
    for count in range(history_length + 1):
        history = [
            HistoryEntry(
                timestamp=now - 60_000 * n * n if n % 4 else UNKNOWN_GAP,
                event_id=f"probe-{n}",
                item_id=known[(count + n) % len(known)] if n % 3 else f"unknown-{n}",
                event_type=("view", "purchase", "novel-type", "")[n % 4],
            )
            for n in range(count)
        ]
        context = () if count % 2 else ("country=probe", f"surface=s{count}")
        found, expected = (
            call("probe-user", history, now, context) for call in (compiled, reference)
        )
        difference = np.abs(found - expected)
        worst = max(worst, float(difference.max()))
    return worst
