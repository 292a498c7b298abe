"""The trainer's steps, each on its own: windows, towers, loss, gate and hold-out split."""

import numpy as np
import pytest
import tensorflow as tf

from streamrec.infra.contracts.query_inputs import TYPE_IDS, UNKNOWN_GAP
from streamrec.training.data_window import holdout_cutoff
from streamrec.training.gate import decide
from streamrec.training.query_tower import FIRST_ITEM, ItemVocabulary, SequenceQueryTower
from streamrec.training.retrieval_loss import RetrievalLoss, softmax_loss
from streamrec.training.sequence_encoders import sequence_encoder
from streamrec.training.sequences import training_windows

START = 2
ENCODERS = ("gru", "mean", "transformer")
INDEX = {"a": 3, "b": 4, "c": 5}


def test_windows_make_every_position_a_query_for_the_next_item():
    users = np.array(["u", "v", "u", "u", "v"])
    items = np.array(["a", "b", "b", "c", "a"])
    index = {"a": 3, "b": 4, "c": 5}
    times, types = np.arange(5), np.array(["view"] * 5)
    windows = training_windows(users, items, index, 4, times, types)
    assert windows["targets"].tolist() == [[3, 4, 5, 0], [4, 3, 0, 0]]
    assert windows["inputs"].tolist() == [[START, 3, 4, 0], [START, 4, 0, 0]]


def test_windows_carry_each_inputs_type_and_its_gap_to_the_target():
    times = np.array([1_000, 1_000, 61_000])  # the first two in one basket, then a minute
    types = np.array(["view", "click", "purchase"])
    windows = training_windows(np.array(["u"] * 3), np.array(list("abc")), INDEX, 4, times, types)
    assert windows["inputs"].tolist() == [[START, 3, 4, 0]]
    assert windows["gaps"].tolist() == [[UNKNOWN_GAP, 0, 60_000, UNKNOWN_GAP]]
    assert windows["types"].tolist() == [[0, TYPE_IDS["view"], TYPE_IDS["click"], 0]]


def test_each_position_reads_the_context_of_the_event_it_predicts():
    from streamrec.training.request_context import token_ids

    contexts = np.array(["surface=home", "", "device=web\nsurface=deals"], object)
    times, types = np.arange(3), np.array(["view"] * 3)
    windows = training_windows(
        np.array(["u"] * 3), np.array(list("abc")), INDEX, 4, times, types, contexts
    )
    ids = token_ids(contexts)
    assert windows["contexts"].shape == (1, 4, 2)
    assert windows["contexts"][0, :3].tolist() == ids.tolist()  # target-aligned, not input
    assert (windows["contexts"][0, 3] == 0).all()  # padding


def test_long_histories_are_cut_from_the_newest_event_and_each_window_starts_like_serving():
    events = np.array(list("abcab"))  # a b c a b: the newest window is full, the oldest partial
    times, types = np.arange(5), np.array(["view"] * 5)
    windows = training_windows(np.array(["u"] * 5), events, INDEX, 2, times, types)
    assert windows["targets"].tolist() == [[3, 4], [4, 5], [3, 0]]
    assert windows["inputs"].tolist() == [[START, 3], [START, 4], [START, 0]]


@pytest.mark.parametrize("encoder", ENCODERS)
def test_encoders_are_causal(encoder):
    tf.keras.utils.set_random_seed(1)
    layer = sequence_encoder(encoder, 8)
    items = tf.random.normal([2, 6, 8])
    changed = tf.concat([items[:, :3], tf.random.normal([2, 3, 8])], axis=1)
    mask = tf.ones([2, 6], tf.bool)
    before, after = layer(items, mask), layer(changed, mask)
    np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-5)
    assert not np.allclose(before[:, 3:], after[:, 3:])


@pytest.mark.parametrize("encoder", ENCODERS)
def test_serving_reads_the_position_training_trained_for_that_history(encoder):
    tf.keras.utils.set_random_seed(2)
    vocabulary = ItemVocabulary(["a", "b", "c"])
    embedding = tf.keras.layers.Embedding(vocabulary.size, 8)
    tower = SequenceQueryTower(vocabulary, embedding, history_length=4, encoder=encoder, dim=8)
    served = tower({"history": tf.constant([["c", "a", "", ""], ["", "", "", ""]])}).numpy()
    trained = tower.encode(tf.constant([[START, 3, 5, 0, 0]])).numpy()  # a, then c
    np.testing.assert_allclose(served[0], trained[0, 2], atol=1e-5)
    np.testing.assert_allclose(
        served[1], tower.encode(tf.constant([[START]])).numpy()[0, 0], atol=1e-5
    )


def _rows(table):
    return lambda ids: tf.gather(table, ids)


def _loss(**kwargs):
    log_frequency = np.log(np.full(FIRST_ITEM + 3, 1.0 / (FIRST_ITEM + 3))).astype(np.float32)
    return RetrievalLoss(log_frequency, first_item=FIRST_ITEM, **{"logq": False, **kwargs})


@pytest.mark.parametrize("distinct", [True, False])
def test_accidental_hits_are_not_negatives(distinct):
    table = tf.eye(FIRST_ITEM + 3)
    queries = tf.gather(table, [3, 3])
    loss = _loss(temperature=1.0, unique_candidates=distinct)(
        queries, tf.constant([3, 3]), tf.ones(2), _rows(table)
    )
    assert float(loss) == pytest.approx(0.0, abs=1e-6)  # without removal: log(2)


@pytest.mark.parametrize("distinct", [True, False])
def test_padding_positions_are_neither_queries_nor_candidates(distinct):
    table = tf.eye(FIRST_ITEM + 3)
    queries = tf.gather(table, [3, 4])
    loss = _loss(temperature=1.0, unique_candidates=distinct)
    real = loss(queries, tf.constant([3, 4]), tf.ones(2), _rows(table))
    padded = loss(
        tf.concat([queries, tf.gather(table, [5])], 0),
        tf.constant([3, 4, 0]),
        tf.constant([1.0, 1.0, 0.0]),
        _rows(table),
    )
    assert float(padded) == pytest.approx(float(real), abs=1e-6)


@pytest.mark.parametrize("distinct", [True, False])
def test_logq_correction_lowers_the_logits_of_frequent_candidates(distinct):
    frequency = np.array([1, 1, 1, 100, 1, 1], np.float32)
    share = frequency / frequency.sum()
    table = tf.eye(6)
    queries = tf.constant([[0.0, 0, 0, 1, 1, 0]] * 2)  # both score items 3 and 4 alike
    targets, weights = tf.constant([4, 3]), tf.constant([1.0, 0.5])

    def loss(logq):
        layer = RetrievalLoss(np.log(share), 1.0, logq=logq, unique_candidates=distinct)
        return float(layer(queries, targets, weights, _rows(table)))

    assert loss(logq=False) == pytest.approx(np.log(2), abs=1e-6)
    # Item 3 is 100x as frequent, so it was sampled as a negative more often: its logit is
    # lowered by the log of how likely it was to be a candidate, which makes the rare target 4
    # easy and the frequent target 3 hard. Every target a column: likelihood is proportional to
    # frequency. Distinct columns: it is the probability to be in a batch of 1.5 draws.
    ratio = 100.0
    if distinct:
        in_batch = -np.expm1(1.5 * np.log1p(-share))
        ratio = in_batch[3] / in_batch[4]
    expected = (1.0 * np.log1p(1 / ratio) + 0.5 * np.log1p(ratio)) / 1.5
    assert loss(logq=True) == pytest.approx(expected, abs=1e-5)


def test_distinct_candidates_match_the_formula_with_temperature_and_logq():
    rng = np.random.default_rng(9)
    share = rng.dirichlet(np.ones(FIRST_ITEM + 6))
    table, queries = rng.normal(size=(FIRST_ITEM + 6, 4)), rng.normal(size=(6, 4))
    targets, weights = np.array([3, 5, 5, 7, 0, 4]), np.array([1, 1, 1, 1, 0, 0.5])
    layer = RetrievalLoss(np.log(share), temperature=0.1, first_item=FIRST_ITEM)
    got = layer(
        tf.constant(queries, tf.float32),
        tf.constant(targets),
        tf.constant(weights, tf.float32),
        _rows(tf.constant(table, tf.float32)),
    )
    items = np.array([3, 4, 5, 7])  # distinct targets, padding (0) left out
    in_batch = 1 - (1 - share[items]) ** weights.sum()
    logits = queries @ table[items].T / 0.1 - np.log(in_batch)
    log_total = np.log(np.exp(logits).sum(axis=1))
    positive = logits[np.arange(6), np.searchsorted(items, np.maximum(targets, 3))]
    expected = ((log_total - positive) * weights).sum() / weights.sum()
    assert float(got) == pytest.approx(expected, rel=1e-4)


def test_the_softmax_loss_matches_tensorflows_kernel_in_value_and_gradient():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(7, 5)) * 10
    logits[[0, 3], 4] = -1e9  # a column that is not a candidate
    logits = tf.constant(logits, tf.float32)
    labels = tf.constant([0, 1, 2, 3, 0, 1, 2])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours = softmax_loss(logits, labels)
        kernel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    np.testing.assert_allclose(ours.numpy(), kernel.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        tape.gradient(ours, logits).numpy(), tape.gradient(kernel, logits).numpy(), atol=1e-6
    )


def test_a_candidate_that_is_the_target_of_several_queries_counts_once():
    table = tf.eye(FIRST_ITEM + 3)
    queries = tf.constant([[0.0, 0, 0, 1, 1, 0]] * 3)  # scores items 3 and 4 alike
    targets, weights = tf.constant([3, 4, 4]), tf.ones(3)
    distinct = _loss(temperature=1.0)(queries, targets, weights, _rows(table))
    every = _loss(temperature=1.0, unique_candidates=False)(queries, targets, weights, _rows(table))
    assert float(distinct) == pytest.approx(np.log(2), abs=1e-6)  # {3, 4} for every query
    # Every target a column: item 4 competes twice with query 0's target 3.
    assert float(every) == pytest.approx((np.log(3) + 2 * np.log(2)) / 3, abs=1e-6)


def test_extra_uniform_negatives_are_added_and_never_the_target():
    tf.keras.utils.set_random_seed(3)
    table = tf.eye(FIRST_ITEM + 3)
    queries = tf.gather(table, [3])
    with_negatives = _loss(temperature=1.0, extra_negatives=50)
    assert float(with_negatives(queries, tf.constant([3]), tf.ones(1), _rows(table))) > 0.0
    alone = _loss(temperature=1.0)(queries, tf.constant([3]), tf.ones(1), _rows(table))
    assert float(alone) == pytest.approx(0.0, abs=1e-6)


def _result(candidate, popular, ease, serving=None, interval=None):
    models = {"candidate": {"recall@10": candidate}, "most_popular": {"recall@10": popular}}
    models["ease"] = {"recall@10": ease}
    result = {"models": models}
    if serving is not None:
        models["version 1"] = {"recall@10": serving}
        difference = {"difference": candidate - serving, "interval": interval}
        result["differences"] = {
            "of": "candidate",
            "against": {"version 1": {"recall@10": difference}},
        }
    return result


def _against_serving(candidate, serving, interval):
    result = _result(candidate, 0.1, 0.2, serving, interval)
    return decide(result, "candidate", "version 1", "recall@10", 0.02)


def test_the_gate_wants_every_baseline_beaten():
    assert decide(_result(0.3, 0.1, 0.2), "candidate", None, "recall@10", 0.02).promote
    refused = decide(_result(0.3, 0.1, 0.35), "candidate", None, "recall@10", 0.02)
    assert not refused.promote and "does not beat the ease baseline" in refused.reason
    with pytest.raises(ValueError, match="ndcg@5"):
        decide(_result(0.3, 0.1, 0.2), "candidate", None, "ndcg@5", 0.02)


def test_the_gate_reads_the_interval_of_the_difference_from_the_serving_version():
    better = _against_serving(0.32, 0.30, [0.005, 0.035])
    assert better.promote and "better beyond noise" in better.reason
    # Not better beyond noise, but surely not worse than 2% of 0.30 (0.006): fresher, serves.
    same = _against_serving(0.301, 0.30, [-0.004, 0.006])
    assert same.promote and "non-inferior within 2%" in same.reason
    # A higher point estimate that may be luck: it may also be worse by more than 2%.
    lucky = _against_serving(0.305, 0.30, [-0.02, 0.03])
    assert not lucky.promote and "may be worse by more than 2%" in lucky.reason
    worse = _against_serving(0.28, 0.30, [-0.03, -0.01])
    assert not worse.promote and "-0.0200" in worse.reason


def test_the_hold_out_is_a_share_of_the_examples_not_of_the_time_range():
    # Most examples are old; the newest 10% of the *range* would hold one example.
    times = np.concatenate([np.arange(900), np.full(99, 950), [10_000]])
    cutoff = holdout_cutoff(times, 0.1)
    assert (times >= cutoff).sum() == pytest.approx(100, abs=2)
    assert holdout_cutoff(times, 0.0) == 10_001


def test_the_validation_split_is_the_newest_share_of_the_training_part_with_histories():
    from streamrec.infra.contracts import feature_spec as spec
    from streamrec.training.data_window import DataWindow

    times = np.arange(100)
    events = {
        spec.EVENT_ID: np.array([f"e{t:03d}" for t in times]),
        spec.USER_ID: np.array(["u", "v"] * 50),
        spec.ITEM_ID: np.array([f"i{t % 7}" for t in times]),
        spec.EVENT_TYPE: np.array(["view"] * 100),
        spec.TIMESTAMP: times,
        spec.CONTEXT_TOKENS: np.array([""] * 100, object),
    }
    window = DataWindow([], cutoff=80, events=events, holdout={}, history_length=3)
    fitted, validation = window.validation_split(0.1)
    assert fitted.sum() == 72 and not fitted[72:].any()  # 8 of the 80 training events
    assert validation[spec.TIMESTAMP].tolist() == list(range(72, 80))  # never the hold-out
    # Each validation example has the user's events before it, most recent first.
    assert validation[spec.HISTORY][0].tolist() == ["i0", "i5", "i3"]  # u at 72: 70, 68, 66
    none, _ = window.validation_split(0.0)
    assert none.sum() == 80
