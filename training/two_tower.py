"""The retrieval model: a causal query tower and an item tower, trained with the exact
softmax over the catalog (:mod:`.catalog_softmax`) or, for catalogs too large for it, a
corrected in-batch softmax (:mod:`.retrieval_loss`).

Every position of every window in a batch is a query. Padding positions are dropped before
the loss, whose cost grows with queries times candidates; under XLA, which needs static
shapes, they stay and the loss masks them instead.

Queries and items are L2-normalised, so scores are cosines scaled by the loss's temperature;
the exported embeddings are normalised too and serving's dot products rank alike.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from streamrec.infra.core.config import TrainingConfig
from streamrec.training.catalog_softmax import CatalogSoftmaxLoss
from streamrec.training.item_features import ItemFeatures
from streamrec.training.item_tower import ItemTower
from streamrec.training.query_tower import FIRST_ITEM, ItemVocabulary, SequenceQueryTower
from streamrec.training.retrieval_loss import RetrievalLoss
from streamrec.training.seen_items import kept_rows, seen_in_windows


class TwoTowerModel(tfrs.Model):
    def __init__(
        self,
        vocabulary: ItemVocabulary,
        item_features: ItemFeatures,
        history_length: int,
        log_frequency: np.ndarray,
        params: TrainingConfig,
    ) -> None:
        super().__init__()
        self.static_shapes = params.jit_compile
        self.vocabulary = vocabulary
        self.item_tower = ItemTower(item_features, params.embedding_dim)
        self.query_tower = NormalisedQueryTower(
            vocabulary,
            self.item_tower,
            history_length,
            params.query_encoder,
            params.embedding_dim,
            params.event_context,
            params.request_context,
            params.blocks,
            params.heads,
            params.dropout,
        )
        self.exclude_seen = params.exclude_seen
        self.full_softmax = params.full_softmax(len(vocabulary.item_ids))
        if self.full_softmax:
            self.loss_layer = CatalogSoftmaxLoss(params.temperature, FIRST_ITEM)
        else:
            self.loss_layer = RetrievalLoss(
                log_frequency,
                params.temperature,
                params.extra_negatives,
                params.logq,
                first_item=FIRST_ITEM,
                unique_candidates=not self.static_shapes,
            )

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        outputs = self.query_tower.encode(
            features["inputs"],
            features.get("gaps"),
            features.get("types"),
            features.get("contexts"),
            training=training,
        )
        dim = tf.shape(outputs)[-1]
        queries = tf.math.l2_normalize(tf.reshape(outputs, [-1, dim]), axis=-1)
        targets, seen = features["targets"], None
        if self.exclude_seen:  # see :mod:`.seen_items`
            repeats, seen_queries, seen_items = seen_in_windows(features["inputs"], targets)
            targets = tf.where(repeats, tf.zeros_like(targets), targets)
        targets = tf.reshape(targets, [-1])
        rows = seen_queries if self.exclude_seen else None
        if not self.static_shapes:
            real = tf.where(targets > 0)[:, 0]
            queries, targets = tf.gather(queries, real), tf.gather(targets, real)
            if self.exclude_seen:
                rows = kept_rows(seen_queries, real, tf.size(features["targets"], tf.int64))
        if self.exclude_seen:
            seen = (rows, seen_items)
        weights = tf.cast(targets > 0, tf.float32)
        if self.full_softmax:
            table = tf.math.l2_normalize(self.item_tower.table(), axis=-1)
            return self.loss_layer(queries, targets, weights, table, seen)
        return self.loss_layer(queries, targets, weights, self._candidates, seen)

    def _candidates(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.math.l2_normalize(self.item_tower(ids), axis=-1)

    def train_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """TFRS's step, with loss scaling when mixed precision wrapped the optimizer."""
        scaling = isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            scaled = self.optimizer.get_scaled_loss(loss) if scaling else loss
        gradients = tape.gradient(scaled, self.trainable_variables)
        if scaling:
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return {"loss": loss}

    def build_variables(self) -> None:
        """Creates every variable (Keras builds lazily), as warm starts and exports need."""
        self.query_tower.encode(tf.constant([[2, 1]], tf.int64), contexts=tf.ones([1, 2, 1]))

    def item_embeddings(self) -> np.ndarray:
        """The known items' embeddings, in the vocabulary's order, as serving ranks them."""
        table = tf.math.l2_normalize(self.item_tower.table(), axis=-1).numpy()
        return table[FIRST_ITEM:]


class NormalisedQueryTower(SequenceQueryTower):
    def query(self, *lookups: tf.Tensor, training: bool = False) -> tf.Tensor:
        return tf.math.l2_normalize(super().query(*lookups, training=training), axis=-1)


def build_two_tower(
    item_ids: list[str],
    log_frequency: np.ndarray,
    history_length: int,
    params: TrainingConfig,
    item_features: ItemFeatures | None = None,
) -> TwoTowerModel:
    """The model; ``item_features`` default to none (ids alone)."""
    return TwoTowerModel(
        ItemVocabulary(item_ids),
        item_features or ItemFeatures.none(len(item_ids)),
        history_length,
        log_frequency,
        params,
    )
