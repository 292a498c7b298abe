"""The retrieval model: query and candidate towers trained with an in-batch softmax.

Every other item of a batch is a negative for each (query, item) pair, which is cheap and
scales with the batch; TFRS's :class:`~tensorflow_recommenders.tasks.Retrieval` computes the
loss. Quality metrics are computed outside Keras, by full ranking over the whole catalog
(:mod:`training.metrics`), because sampled metrics flatter a retrieval model.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from streamrec.infra.contracts import feature_spec as spec
from streamrec.training.towers import CandidateTower, QueryTower


class TwoTowerModel(tfrs.Model):
    def __init__(self, query_tower: QueryTower, candidate_tower: CandidateTower) -> None:
        super().__init__()
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.task = tfrs.tasks.Retrieval()

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        queries = self.query_tower(features)
        candidates = self.candidate_tower(features[spec.ITEM_ID])
        return self.task(queries, candidates, compute_metrics=False)
