"""Early stopping keeps the best epoch's weights and stops after `patience` epochs without one."""

import numpy as np
import tensorflow as tf

from streamrec.training.early_stopping import METRIC, EarlyStopping
from streamrec.training.queries import Catalog, Queries

SCORES = [0.10, 0.30, 0.20, 0.25, 0.29, 0.50]


class _Scripted(EarlyStopping):
    """Reads its validation figures from a script instead of ranking a catalog."""

    def __init__(self, patience):
        queries = Queries.from_examples(
            {"user_id": [], "item_id": [], "timestamp": [], "history": np.empty((0, 2), str)},
            Catalog(np.array(["a"])),
        )
        super().__init__(queries, 2, patience, say=lambda line: None)
        self.script = iter(SCORES)

    def recall(self):
        return next(self.script)


class _EpochMarker(tf.keras.callbacks.Callback):
    """Sets the only weight to the epoch's number, so the kept weights name their epoch."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.layers[0].kernel.assign([[float(epoch)]])


def _fit(patience, epochs=6):
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, use_bias=False, input_shape=(1,))])
    model.compile(optimizer="sgd", loss="mse")
    stopping = _Scripted(patience)
    history = model.fit(
        np.zeros((4, 1)), np.zeros((4, 1)), epochs=epochs, verbose=0,
        callbacks=[_EpochMarker(), stopping],
    )  # fmt: skip
    return model, stopping, history


def test_the_fit_stops_after_patience_epochs_without_a_better_one_and_keeps_the_best():
    model, stopping, history = _fit(patience=3)
    # Best at epoch 2 (0.30); epochs 3, 4 and 5 are not better: it stops after the fifth.
    assert len(history.history["loss"]) == 5
    assert history.history[METRIC] == SCORES[:5]
    assert float(model.layers[0].kernel.numpy()[0, 0]) == 1.0  # the weights after epoch 2
    assert stopping.summary()["best_epoch"] == 2 and stopping.summary()["epochs_run"] == 5


def test_a_patient_fit_finds_the_late_improvement():
    model, stopping, _ = _fit(patience=4)
    assert stopping.summary()["best_epoch"] == 6
    assert float(model.layers[0].kernel.numpy()[0, 0]) == 5.0


ITEMS = np.array(["a", "b", *(f"x{n}" for n in range(10))])


class _FixedModel:
    """Every query embeds to [1, 0]; item "a" scores highest, then "b", then the rest."""

    def __init__(self):
        self.history_widths = []

    def query_tower(self, inputs):
        self.history_widths.append(int(inputs["history"].shape[1]))
        return tf.ones([len(inputs["history"]), 1]) * tf.constant([[1.0, 0.0]])

    def item_embeddings(self):
        return np.array([[1.0, 0.0], [0.5, 0.5]] + [[0.0, 1.0]] * 10, np.float32)


def _seen_target_recall(exclude_seen, history_length=2):
    examples = {
        "user_id": np.array(["u", "v"]),
        "item_id": np.array(["a", "b"]),
        "timestamp": np.array([1, 2]),
        # u buys "a" again, two purchases after the last; v buys "b" after "a"
        "history": np.array([["x1", "a"], ["a", ""]]),
    }
    queries = Queries.from_examples(examples, Catalog(ITEMS))
    stopping = EarlyStopping(queries, history_length, patience=1, exclude_seen=exclude_seen)
    model = _FixedModel()
    stopping.set_model(model)
    recall = stopping.recall()
    assert model.history_widths == [history_length]  # the tower reads its own length
    return recall


def test_validation_leaves_seen_items_out_when_the_fit_does():
    # Seen items kept: u's repeat of "a" ranks first and v's "b" second, both hits.
    assert _seen_target_recall(exclude_seen=False) == 1.0
    # Left out: u's target was seen, a miss as a served list would make it; v's "b" now ranks
    # first and stays a hit.
    assert _seen_target_recall(exclude_seen=True) == 0.5


def test_items_older_than_the_model_reads_are_still_left_out_as_seen():
    # A model of one item of history reads only u's "x1", but serving leaves out the whole
    # online history, so u's repeat of "a" is still a miss, and v's "a" is still left out.
    assert _seen_target_recall(exclude_seen=True, history_length=1) == 0.5
