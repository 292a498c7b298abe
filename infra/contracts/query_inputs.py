"""The query tower's inputs as numbers: how the strings of a request become the indices the
tower looks up. Part of the export layout (v4), for its ``query_tower.tflite``.

The SavedModel signature takes strings and does these lookups itself. Its compiled twin,
``query_tower.tflite``, takes the numbers, because TensorFlow Lite has no kernels for string
hashing and lookup tables; a serving process turns a request into them with this module. A
TensorFlow call costs about 0.3 ms before it computes anything, and the compiled tower about
0.06 ms in all, so serving does the lookups itself rather than call TensorFlow for them.

Inputs, each int64, history positions most recent first as in the signature:

- ``items`` ``[1, history_length]``: an item's index is its line in ``item_ids.txt`` plus
  :data:`FIRST_ITEM`, for the first ``query_items`` lines (the tower's vocabulary; the
  version's metadata records how many); :data:`UNKNOWN_ITEM` for any other id,
  :data:`ITEM_PADDING` after the history;
- ``gaps`` ``[1, history_length]``: :func:`history_gaps`, in ms;
- ``types`` ``[1, history_length]``: :func:`event_type_index` of each event's type;
- ``contexts`` ``[1, MAX_CONTEXT_TOKENS]``: the request's first context tokens (sorted, as
  :func:`.feature_spec.context_tokens` makes them) as bucket ids, ``farmhash
  Fingerprint64(token) mod (CONTEXT_BUCKETS - 1) + 1`` (TensorFlow's
  ``to_hash_bucket_fast``), :data:`CONTEXT_PADDING` after them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.infra.contracts.events import EVENT_TYPES

ITEM_PADDING, UNKNOWN_ITEM, START_ITEM, FIRST_ITEM = 0, 1, 2, 3
UNKNOWN_GAP = -1  # ms: no time known (padding, the start token, events without times)
TYPE_PADDING = ""
# Index 0 is padding (and the start token), 1 a type the schema does not know, then the types.
TYPE_IDS = {TYPE_PADDING: 0, **{name: 2 + i for i, name in enumerate(EVENT_TYPES)}}
TYPE_BUCKETS = 2 + len(EVENT_TYPES)
UNKNOWN_TYPE = 1
CONTEXT_BUCKETS = 4096
CONTEXT_PADDING = 0
MAX_CONTEXT_TOKENS = 8


def event_type_index(name: str) -> int:
    return TYPE_IDS.get(name, UNKNOWN_TYPE)


def history_gaps(times: Sequence[int], request_time: int) -> list[int]:
    """Each event's gap to the next one, or for the newest to the request: ``times`` most
    recent first (ms, ``UNKNOWN_GAP`` where unknown) -> gaps in the same order."""
    following = [request_time, *times][: len(times)]
    return [
        after - at if at >= 0 and after >= 0 else UNKNOWN_GAP
        for at, after in zip(times, following, strict=True)
    ]


def padded(values: Sequence[int], length: int, padding: int) -> np.ndarray:
    """``values`` cut or padded to ``length``, as one int64 row ``[1, length]``."""
    row = np.full((1, length), padding, np.int64)
    row[0, : min(len(values), length)] = values[:length]
    return row
