"""The request's context as a query feature: its ``key=value`` tokens, hashed, one embedding
bag per query.

An app asks for recommendations knowing things the history does not tell: the device, the
surface (home page, search, deals), the country. The event a training query predicts carried
the same context when it happened (feature spec 4), so the query tower can learn what each
context changes. The bag is added to the tower's output at every position: position ``t``
predicts event ``t`` and reads that event's context, which at serving is the request's
(export layout 3). Adding it at the output, not to the history's inputs, keeps serving's
history free of contexts, which the online store does not keep.

Tokens are hashed into :data:`CONTEXT_BUCKETS` buckets rather than looked up in a vocabulary:
training and serving hash alike without a vocabulary to ship, a value first seen after
training shares a bucket instead of failing, and a warm start keeps every row. Bucket 0 is
padding. A context's first :data:`MAX_TOKENS` tokens (in sorted order) are read; contexts are
short in practice, and the schema allows 32 entries.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.query_inputs import CONTEXT_BUCKETS
from streamrec.infra.contracts.query_inputs import MAX_CONTEXT_TOKENS as MAX_TOKENS

TOKEN_SEPARATOR = "\n"  # between a context's tokens where training keeps them in one string


def hashed(tokens: tf.Tensor) -> tf.Tensor:
    """``key=value`` tokens (string, any shape, ``""`` padded) -> bucket ids (0: padding)."""
    ids = tf.strings.to_hash_bucket_fast(tokens, CONTEXT_BUCKETS - 1) + 1
    return tf.where(tokens == "", tf.zeros_like(ids), ids)


def token_ids(joined: np.ndarray) -> np.ndarray:
    """Each event's context, its tokens joined by :data:`TOKEN_SEPARATOR` (str or bytes)
    -> int32 ``[events, width]`` bucket ids, ``width`` the most tokens any event has (at least
    1, at most :data:`MAX_TOKENS`): every slot costs a lookup at every position of every step.
    Contexts repeat, so each distinct one is hashed once."""
    distinct, inverse = np.unique(np.asarray(joined, dtype=object), return_inverse=True)
    found = [split_tokens(text) for text in distinct.tolist()]
    width = max([1, *(min(len(tokens), MAX_TOKENS) for tokens in found)])
    tokens = np.full((len(found), width), "", dtype=object)
    for row, row_tokens in enumerate(found):
        tokens[row, : min(len(row_tokens), width)] = row_tokens[:width]
    ids = hashed(tf.constant(tokens.astype(str))).numpy().astype(np.int32)
    return ids[inverse.ravel()] if len(joined) else np.zeros((0, width), np.int32)


def split_tokens(joined: str | bytes) -> tuple[str, ...]:
    """A context's tokens from their joined form."""
    text = joined.decode() if isinstance(joined, bytes) else joined
    return tuple(token for token in text.split(TOKEN_SEPARATOR) if token)


class RequestContext(tf.keras.layers.Layer):
    """Bucket ids ``[..., tokens]`` (or the tokens themselves) -> the sum of their embeddings,
    ``[..., dim]``; zero for no context."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embeddings = tf.keras.layers.Embedding(CONTEXT_BUCKETS, dim)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        if ids.dtype == tf.string:
            ids = hashed(ids[..., :MAX_TOKENS])
        ids = tf.cast(ids, tf.int64)
        real = tf.cast(ids > 0, self.compute_dtype)[..., tf.newaxis]
        return tf.reduce_sum(self.embeddings(ids) * real, axis=-2)
