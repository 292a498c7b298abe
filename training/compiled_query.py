"""The query tower compiled for one request at a time: ``query_tower.tflite`` of the export.

Serving computes one query embedding per uncached request. Through the SavedModel signature
that costs about 0.8 ms here, most of it TensorFlow's per-call and per-op overhead rather
than arithmetic (an empty ``tf.function`` of the same six inputs costs 0.3 ms). The same
tower compiled by TensorFlow Lite runs in about 0.06 ms (transformer), with the same
outputs to about 1e-7. TensorFlow Lite has no string hashing or lookup tables, so the
compiled tower starts after them: it takes the numbers of
:mod:`streamrec.infra.contracts.query_inputs`, which serving computes itself.

The compiled tower is shipped only if it matches the tower to :data:`TOLERANCE` on sampled
inputs; otherwise the export says why and serving calls the signature, as before.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from streamrec.infra.contracts.query_inputs import (
    CONTEXT_BUCKETS,
    FIRST_ITEM,
    MAX_CONTEXT_TOKENS,
    TYPE_BUCKETS,
    UNKNOWN_GAP,
)
from streamrec.training.query_tower import SequenceQueryTower

TOLERANCE = 1e-5
_SAMPLES = 64


def compile_query_tower(
    tower: SequenceQueryTower, history_length: int
) -> tuple[bytes | None, dict]:
    """The tower's :meth:`~SequenceQueryTower.query` as a TensorFlow Lite model for one
    request, and a description for the version's metadata: the ``max_abs_diff`` against the
    tower on sampled inputs, or the ``reason`` there is no model."""
    rows = [history_length, history_length, history_length, MAX_CONTEXT_TOKENS]
    query = tf.function(
        lambda items, gaps, types, contexts: tower.query(items, gaps, types, contexts),
        input_signature=[
            tf.TensorSpec([1, width], tf.int64, name=name)
            for width, name in zip(rows, ("items", "gaps", "types", "contexts"), strict=True)
        ],
    )
    try:
        concrete = query.get_concrete_function()
        model = tf.lite.TFLiteConverter.from_concrete_functions([concrete], tower).convert()
    except Exception as exc:  # the converter raises many kinds; none may stop an export
        reason = f"TensorFlow Lite cannot convert the tower: {exc}".splitlines()[0]
        return None, {"reason": reason}
    difference = _max_difference(model, query, tower.vocabulary.size, history_length)
    if not difference <= TOLERANCE:
        return None, {"reason": f"compiled tower differs by {difference:.2g} > {TOLERANCE}"}
    return model, {"max_abs_diff": float(difference)}


def _max_difference(model: bytes, query: tf.types.experimental.PolymorphicFunction,
                    vocabulary_size: int, history_length: int) -> float:  # fmt: skip
    interpreter = Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    run = interpreter.get_signature_runner()
    rng = np.random.default_rng(0)
    worst = 0.0
    for sample in range(_SAMPLES):
        inputs = _sample_inputs(rng, sample % (history_length + 1), vocabulary_size, history_length)
        expected = query(**inputs).numpy()
        (got,) = run(**inputs).values()
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def _sample_inputs(
    rng: np.random.Generator, count: int, vocabulary_size: int, history_length: int
) -> dict[str, np.ndarray]:
    """Inputs as serving makes them: ``count`` events (known and unknown items, some gaps
    unknown or zero), padding after them, and a context of a few tokens."""
    items = np.zeros((1, history_length), np.int64)
    items[0, :count] = rng.integers(1, vocabulary_size, count)
    items[items == 2] = FIRST_ITEM  # the start token is never in a history
    gaps = np.full((1, history_length), UNKNOWN_GAP, np.int64)
    gaps[0, :count] = rng.choice([UNKNOWN_GAP, 0, 1_000, 3_600_000, 10**10], count)
    types = np.zeros((1, history_length), np.int64)
    types[0, :count] = rng.integers(1, TYPE_BUCKETS, count)
    contexts = np.zeros((1, MAX_CONTEXT_TOKENS), np.int64)
    width = int(rng.integers(0, MAX_CONTEXT_TOKENS + 1))
    contexts[0, :width] = rng.integers(1, CONTEXT_BUCKETS, width)
    return {"items": items, "gaps": gaps, "types": types, "contexts": contexts}
