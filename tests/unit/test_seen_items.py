"""Seen items in training: repeated targets are not queries, history items not negatives."""

import numpy as np
import tensorflow as tf

from streamrec.training.catalog_softmax import CatalogSoftmaxLoss
from streamrec.training.query_tower import FIRST_ITEM
from streamrec.training.seen_items import kept_rows, masked, seen_in_windows

A, B, C, D = FIRST_ITEM, FIRST_ITEM + 1, FIRST_ITEM + 2, FIRST_ITEM + 3
START = 2


def test_a_target_already_in_its_positions_history_is_a_repeat():
    inputs = tf.constant([[START, A, B, A], [START, C, 0, 0]], tf.int64)
    targets = tf.constant([[A, B, A, D], [C, 0, 0, 0]], tf.int64)
    repeats, queries, items = seen_in_windows(inputs, targets)
    # Position 0 reads only the start token; position 2 (target A) has read A at position 1.
    assert repeats.numpy().tolist() == [[False, False, True, False], [False] * 4]
    pairs = sorted(zip(queries.numpy().tolist(), items.numpy().tolist(), strict=True))
    assert pairs == [(1, A), (2, A), (2, B), (3, A), (3, A), (3, B), (5, C), (6, C), (7, C)]


def test_rows_follow_the_positions_kept():
    kept = tf.constant([0, 2, 3], tf.int64)
    rows = kept_rows(tf.constant([1, 2, 3], tf.int64), kept, 4)
    assert rows.numpy().tolist() == [-1, 1, 2]


def test_masked_pairs_are_never_candidates():
    logits = tf.zeros([2, 3])
    out = masked(logits, tf.constant([0, 1, -1]), tf.constant([2, -1, 0]), -1e9).numpy()
    assert out.tolist() == [[0, 0, -1e9], [0, 0, 0]]


def test_a_history_item_is_no_negative_in_the_exact_softmax():
    table = tf.eye(FIRST_ITEM + 3)
    query = tf.gather(table, [A]) + tf.gather(table, [B])  # as close to A as to B
    loss = CatalogSoftmaxLoss(temperature=0.1, first_item=FIRST_ITEM)
    plain = float(loss(query, tf.constant([A]), tf.ones(1), table))
    seen_b = (tf.constant([0], tf.int64), tf.constant([B], tf.int64))
    without_b = float(loss(query, tf.constant([A]), tf.ones(1), table, seen_b))
    assert np.isclose(plain, np.log(2.0) + 0.0, atol=1e-3)  # A and B tie, C far below
    assert np.isclose(without_b, 0.0, atol=1e-3)


def test_an_evaluation_reads_as_much_history_as_serving_leaves_out():
    from streamrec.infra.core.config import Config, FeaturesConfig
    from streamrec.training.seen_items import evaluated_history_length

    config = Config(features=FeaturesConfig(history_length=20, online_history_length=50))
    # Serving leaves out every item of the 50 newest, so an evaluation that does must read 50.
    assert evaluated_history_length(config, True) == 50
    assert evaluated_history_length(config, True, 100) == 100  # a longer model reads more
    assert evaluated_history_length(config, False) == 20
    assert evaluated_history_length(config, False, 30) == 30


def test_a_query_cut_to_a_model_s_length_keeps_its_newest_items():
    from streamrec.training.queries import Catalog, Queries

    examples = {
        "user_id": np.array(["u"]),
        "item_id": np.array(["c"]),
        "timestamp": np.array([3]),
        "history": np.array([["b", "a", ""]]),  # most recent first
    }
    queries = Queries.from_examples(examples, Catalog(np.array(["a", "b", "c"])))
    cut = queries.newest(1)
    assert cut.histories.tolist() == [["b"]] and cut.history_index.tolist() == [[1]]
    assert cut.history_times.shape == (1, 1) and cut.targets.tolist() == [2]
