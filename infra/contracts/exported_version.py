"""The one reader of an exported version's query signature and item table (export layout v4).

Training's evaluation scores a version exactly as serving will, and both must feed a version the
inputs its signature declares, cut or padded to the history length it was exported with. They
are separate stages and may not import each other, so the layout's reading lives here, beside
the layout (:mod:`.export_layout`): a layout change is made once.

Unlike the rest of the contracts, this module imports TensorFlow, since it loads the
SavedModel; the light modules (the layout's constants among them) stay free of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.export_layout import (
    HISTORY_EVENT_TYPES_INPUT,
    HISTORY_INPUT,
    HISTORY_PADDING,
    HISTORY_TIMES_INPUT,
    QUERY_OUTPUT,
    REQUEST_CONTEXT_INPUT,
    REQUEST_TIME_INPUT,
    SIGNATURE_NAME,
    UNKNOWN_TIME,
    USER_ID_INPUT,
    ModelVersion,
)
from streamrec.infra.core.errors import StreamrecError


@dataclass(frozen=True)
class QueryBatch:
    """Queries as the signature takes them; histories most recent first, any width.

    ``user_ids`` string ``[n]``; ``histories`` string ``[n, h]``; ``history_times`` int64
    ``[n, h]`` (ms, :data:`UNKNOWN_TIME` where unknown); ``history_types`` string ``[n, h]``;
    ``request_times`` int64 ``[n]`` (ms); ``contexts`` one tuple of sorted tokens per query.
    """

    user_ids: np.ndarray
    histories: np.ndarray
    history_times: np.ndarray
    history_types: np.ndarray
    request_times: np.ndarray
    contexts: Sequence[Sequence[str]]


@dataclass(frozen=True)
class ExportedVersion:
    """A version's query signature and its item table, loaded and checked.

    ``item_embeddings`` is float32 ``[items, dim]`` in the order of ``item_ids`` (``[items]``);
    mapped from the file when loaded with ``mapped=True``, so the processes of a host share one
    copy in the page cache.
    """

    version: ModelVersion
    metadata: dict
    history_length: int
    item_ids: np.ndarray
    item_embeddings: np.ndarray
    signature: Callable[..., dict[str, tf.Tensor]]
    accepted_inputs: frozenset[str]  # v1 signatures take two inputs, v2 five, v3 and v4 six

    def query_embeddings(self, queries: QueryBatch) -> np.ndarray:
        """float32 ``[n, dim]``, one query embedding per query."""
        inputs = signature_inputs(queries, self.history_length)
        chosen = {name: value for name, value in inputs.items() if name in self.accepted_inputs}
        return self.signature(**chosen)[QUERY_OUTPUT].numpy()


def load_exported_version(version: ModelVersion, mapped: bool = False) -> ExportedVersion:
    """Loads ``version``'s signature and item table; a one-line error if any is unreadable or
    the ids and embeddings disagree."""
    try:
        metadata = version.metadata()
        item_ids = np.array(version.item_ids_file.read_text().splitlines())
        embeddings = np.load(version.item_embeddings_file, mmap_mode="r" if mapped else None)
        signature = tf.saved_model.load(str(version.saved_model_dir)).signatures[SIGNATURE_NAME]
        history_length = int(metadata["history_length"])
    except (OSError, ValueError, KeyError) as exc:
        raise StreamrecError(f"cannot load model version {version.root}: {exc}") from exc
    if len(item_ids) != len(embeddings):
        raise StreamrecError(
            f"model version {version.root} is inconsistent: {len(item_ids)} item ids "
            f"but {len(embeddings)} embeddings"
        )
    return ExportedVersion(
        version=version,
        metadata=metadata,
        history_length=history_length,
        item_ids=item_ids,
        item_embeddings=embeddings,
        signature=signature,
        accepted_inputs=frozenset(signature.structured_input_signature[1]),
    )


def signature_inputs(queries: QueryBatch, length: int | None = None) -> dict[str, tf.Tensor]:
    """The signature's six inputs for ``queries``, histories cut or padded to ``length`` (as
    given when None); a reader passes a version only the ones it accepts."""
    return {
        USER_ID_INPUT: tf.constant(queries.user_ids),
        HISTORY_INPUT: tf.constant(_fit(queries.histories, length, HISTORY_PADDING)),
        HISTORY_TIMES_INPUT: tf.constant(
            _fit(np.asarray(queries.history_times, np.int64), length, UNKNOWN_TIME)
        ),
        HISTORY_EVENT_TYPES_INPUT: tf.constant(_fit(queries.history_types, length, "")),
        REQUEST_TIME_INPUT: tf.constant(np.asarray(queries.request_times, np.int64)),
        REQUEST_CONTEXT_INPUT: tf.constant(padded_tokens(queries.contexts)),
    }


def padded_tokens(contexts: Sequence[Sequence[str]]) -> np.ndarray:
    """Token tuples -> string ``[n, width]`` padded with ``""``, ``width`` the longest, at
    least 1."""
    width = max([1, *(len(c) for c in contexts)])
    out = np.full((len(contexts), width), "", dtype=object)
    for row, context in enumerate(contexts):
        out[row, : len(context)] = list(context)
    return out.astype(str)


def _fit(values: np.ndarray, length: int | None, padding: object) -> np.ndarray:
    """Rows ``[n, h]`` cut or padded to ``[n, length]``."""
    values = np.asarray(values)
    if length is None or values.shape[1] == length:
        return values
    if values.shape[1] > length:
        return values[:, :length]
    filler = np.full((len(values), length - values.shape[1]), padding, dtype=values.dtype)
    return np.concatenate([values, filler], axis=1)
