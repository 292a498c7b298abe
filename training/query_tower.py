"""The two towers over one item vocabulary: a causal query tower and the candidate tower.

Item ids are looked up once, in :class:`ItemVocabulary`: index 0 is padding, 1 any unknown
item, 2 the start token, then the known items. Both towers read the same embedding table
(tied input and output embeddings, as in SASRec): an item is what it predicts.

The query tower reads a sequence that starts with the start token, so the start position is a
query too: the learned answer for a user with no history yet. Training feeds whole windows
(:mod:`.sequences`) and reads every position; serving feeds the history most recent first, as
the export layout's signature defines, reverses it into time order and reads the position of
the newest item. With ``event_context``, each position also reads its event's type and the gap
to the next event or the request (:mod:`.event_context`); with ``request_context``, each
position's output adds the context of the event it predicts, the request's at serving
(:mod:`.request_context`).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from streamrec.infra.contracts.export_layout import (
    HISTORY_EVENT_TYPES_INPUT,
    HISTORY_PADDING,
    HISTORY_TIMES_INPUT,
    REQUEST_CONTEXT_INPUT,
    REQUEST_TIME_INPUT,
)
from streamrec.infra.contracts.query_inputs import FIRST_ITEM, START_ITEM
from streamrec.training.dropout import StatelessDropout
from streamrec.training.event_context import UNKNOWN_GAP, EventContext, serving_gaps
from streamrec.training.request_context import MAX_TOKENS, RequestContext, hashed
from streamrec.training.sequence_encoders import sequence_encoder

START = "[start]"


class ItemVocabulary(tf.keras.layers.Layer):
    def __init__(self, item_ids: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.item_ids = list(item_ids)
        self.lookup = tf.keras.layers.StringLookup(
            vocabulary=[START, *self.item_ids], mask_token=HISTORY_PADDING
        )

    @property
    def size(self) -> int:
        return len(self.item_ids) + FIRST_ITEM

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return self.lookup(ids)


class SequenceQueryTower(tf.keras.Model):
    def __init__(
        self,
        vocabulary: ItemVocabulary,
        item_tower: tf.keras.layers.Layer,
        history_length: int,
        encoder: str,
        dim: int,
        event_context: bool = True,
        request_context: bool = True,
        blocks: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocabulary = vocabulary
        self.item_tower = item_tower  # shared with the candidates: tied embeddings
        self.positions = tf.keras.layers.Embedding(history_length + 1, dim)
        self.context = EventContext(dim) if event_context else None
        self.encoder = sequence_encoder(encoder, dim, blocks, heads, dropout)
        self.dropout = StatelessDropout(dropout)
        # Created last: warm starts match weights in creation order, and versions trained
        # before it existed lack its weights.
        self.request_context = RequestContext(dim) if request_context else None

    def encode(
        self,
        ids: tf.Tensor,
        gaps: tf.Tensor | None = None,
        types: tf.Tensor | None = None,
        contexts: tf.Tensor | None = None,
        training: bool = False,
    ) -> tf.Tensor:
        """``ids`` [batch, time] item indices, start token first, with their events' ``gaps``
        (ms) and ``types`` where known, and each position's ``contexts`` (bucket ids [batch,
        time, tokens] of the event it predicts) -> [batch, time, dim]."""
        positions = tf.range(tf.shape(ids)[1])
        items = self.item_tower(ids) + self.positions(positions)[tf.newaxis]
        if self.context is not None:
            if gaps is None:
                gaps = tf.fill(tf.shape(ids), tf.constant(UNKNOWN_GAP, tf.int64))
            if types is None:
                types = tf.zeros_like(ids)
            items += self.context(gaps, types)
        outputs = self.encoder(self.dropout(items, training=training), ids != 0, training=training)
        if self.request_context is not None and contexts is not None:
            outputs += self.request_context(contexts)
        return outputs

    def call(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Serving: ``history`` [batch, history_length] most recent first, and optionally
        ``history_times`` (ms), ``history_event_types``, ``request_time`` and
        ``request_context`` (tokens [batch, n]) -> [batch, dim]."""
        return self.query(*self.lookups(features), training=training)

    def lookups(self, features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, ...]:
        """The serving features as numbers: item indices, gaps, type indices and context
        bucket ids (all most recent first, the last ``[batch, 0]`` without a context). The
        string lookups live here so that :meth:`query` is numbers only, which TensorFlow Lite
        compiles for serving (:mod:`.compiled_query`); it has no string kernels."""
        ids = self.vocabulary(features["history"])
        counts = tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)
        gaps, types = self._context(features, counts, tf.shape(ids))
        contexts = tf.zeros([tf.shape(ids)[0], 0], tf.int64)
        if self.request_context is not None and REQUEST_CONTEXT_INPUT in features:
            contexts = hashed(features[REQUEST_CONTEXT_INPUT][:, :MAX_TOKENS])
        return ids, gaps, types, contexts

    def query(
        self,
        ids: tf.Tensor,
        gaps: tf.Tensor,
        types: tf.Tensor,
        contexts: tf.Tensor,
        training: bool = False,
    ) -> tf.Tensor:
        """:meth:`lookups`' outputs -> the query after each row's newest item, [batch, dim]."""
        counts = tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)

        def in_time_order(values: tf.Tensor, first: tf.Tensor) -> tf.Tensor:
            values = tf.reverse_sequence(values, counts, seq_axis=1, batch_axis=0)
            return tf.concat([tf.fill([tf.shape(ids)[0], 1], first), values], axis=1)

        outputs = self.encode(
            in_time_order(ids, tf.constant(START_ITEM, ids.dtype)),
            in_time_order(gaps, tf.constant(UNKNOWN_GAP, tf.int64)),
            in_time_order(types, tf.constant(0, tf.int64)),
            training=training,
        )
        query = tf.gather(outputs, counts, axis=1, batch_dims=1)
        if self.request_context is not None:
            query += self.request_context(contexts)
        return query

    def _context(
        self, features: dict[str, tf.Tensor], counts: tf.Tensor, shape: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Gaps and type indices, most recent first; unknown where the caller gave none."""
        gaps = tf.fill(shape, tf.constant(UNKNOWN_GAP, tf.int64))
        if HISTORY_TIMES_INPUT in features and REQUEST_TIME_INPUT in features:
            times, now = features[HISTORY_TIMES_INPUT], features[REQUEST_TIME_INPUT]
            gaps = serving_gaps(times, counts, now)
        types = tf.zeros(shape, tf.int64)
        if HISTORY_EVENT_TYPES_INPUT in features and self.context is not None:
            types = self.context.type_lookup(features[HISTORY_EVENT_TYPES_INPUT])
        return gaps, types
