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
        super().__init__(queries, patience, say=lambda line: None)
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
