"""The exact softmax: every item of the catalog a candidate, nothing before the first item."""

import numpy as np
import pytest
import tensorflow as tf

from streamrec.training.catalog_softmax import CatalogSoftmaxLoss
from streamrec.training.query_tower import FIRST_ITEM


def test_the_loss_is_cross_entropy_over_the_items_only():
    rng = np.random.default_rng(0)
    table = tf.constant(rng.normal(size=(FIRST_ITEM + 5, 4)), tf.float32)
    queries = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    targets = tf.constant([FIRST_ITEM, FIRST_ITEM + 4, FIRST_ITEM + 2])
    loss = CatalogSoftmaxLoss(temperature=0.5, first_item=FIRST_ITEM)
    got = float(loss(queries, targets, tf.ones(3), table))
    items = table[FIRST_ITEM:]  # padding, unknown and start are never candidates
    expected = tf.nn.sparse_softmax_cross_entropy_with_logits(
        targets - FIRST_ITEM, tf.matmul(queries, items, transpose_b=True) / 0.5
    )
    assert got == pytest.approx(float(tf.reduce_mean(expected)), rel=1e-5)


def test_padding_queries_do_not_count():
    table = tf.eye(FIRST_ITEM + 3)
    queries = tf.gather(table, [FIRST_ITEM, FIRST_ITEM + 1])
    targets = tf.constant([FIRST_ITEM, FIRST_ITEM + 2])  # the second query is wrong...
    loss = CatalogSoftmaxLoss(temperature=0.1, first_item=FIRST_ITEM)
    both = float(loss(queries, targets, tf.ones(2), table))
    first_only = float(loss(queries, targets, tf.constant([1.0, 0.0]), table))
    assert first_only < both  # ...and weighted out, it no longer costs anything
    assert first_only == pytest.approx(float(loss(queries[:1], targets[:1], tf.ones(1), table)))


def test_auto_takes_the_exact_softmax_up_to_its_limit():
    from streamrec.infra.core.config import TrainingConfig

    auto = TrainingConfig(softmax="auto", full_softmax_max_items=1000)
    assert auto.full_softmax(1000) and not auto.full_softmax(1001)
    assert TrainingConfig(softmax="full", full_softmax_max_items=10).full_softmax(10**6)
    assert not TrainingConfig(softmax="sampled").full_softmax(10)
