"""Early stopping on the newest part of the training window.

A fixed number of epochs is wrong for most data: too few for a large window that is still
improving, too many for a small one that overfits, at the cost of time either way. The fit
instead holds out the newest ``training.validation_fraction`` of its training examples (the
part nearest in time to what the hold-out and serving ask), ranks the whole catalog for them
after every epoch, keeps the weights of the best epoch, and stops once
``training.patience`` epochs in a row have not improved on it. ``training.epochs`` is then
only the ceiling. With ``training.refit``, the chosen epochs are then trained again on the
whole training part (:mod:`.refit`).

The metric is the promotion metric's kind, full-ranking recall@10 (without seen items when
the fit leaves them out, as the gate then does), over up to
``_MAX_QUERIES`` validation examples (a fixed sample, so that every worker of a distributed
fit computes the same figure from the same weights and all stop at the same epoch).

A fit resumed from its checkpoint starts counting again: the best weights so far are not part
of the checkpoint, so a resumed run may train up to ``patience`` epochs more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from streamrec.training.evaluation import rank_all
from streamrec.training.exported_model import tower_embeddings
from streamrec.training.queries import Queries

log = logging.getLogger(__name__)

_MAX_QUERIES = 10_000
_K = 10
METRIC = f"validation_recall@{_K}"
SUMMARY = ("epochs_run", "best_epoch", METRIC, "validation_queries")  # keys of ``summary()``


class EarlyStopping(tf.keras.callbacks.Callback):
    def __init__(
        self,
        queries: Queries,
        history_length: int,
        patience: int,
        say: Callable[[str], object] = log.info,
        seed: int = 0,
        exclude_seen: bool = False,
    ) -> None:
        """``queries``' targets are rows of the model's ``item_embeddings()``, the items of
        its vocabulary; their histories may be longer than the model's ``history_length``
        (the model reads the newest items, all are left out as seen)."""
        super().__init__()
        if len(queries) > _MAX_QUERIES:
            rows = np.random.default_rng(seed).choice(len(queries), _MAX_QUERIES, replace=False)
            queries = queries.select(np.sort(rows))
        self.queries = queries
        self.exclude_seen = exclude_seen
        self.history_length = history_length
        self.patience = patience
        self.say = say
        self.best = -1.0
        self.best_epoch = -1
        self.epochs_run = 0
        self._best_weights: list | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        score = self.recall()
        self.epochs_run = epoch + 1
        if logs is not None:
            logs[METRIC] = score
        if score > self.best:
            self.best, self.best_epoch = score, epoch
            self._best_weights = self.model.get_weights()
        elif epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True
        self.say(
            f"epoch {epoch + 1}: {METRIC} {score:.4f} "
            f"(best {self.best:.4f} at epoch {self.best_epoch + 1})"
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)

    def recall(self) -> float:
        if not len(self.queries):
            return 0.0
        queries = tower_embeddings(self.model.query_tower, self.queries, self.history_length)
        items = self.model.item_embeddings()
        exclude = self.queries.history_index if self.exclude_seen else None
        ranks = rank_all(
            lambda rows: queries[rows] @ items.T, self.queries.targets, 1, exclude
        ).ranks
        return float(np.mean(ranks < _K))

    def summary(self) -> dict:
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch + 1,
            METRIC: round(self.best, 6),
            "validation_queries": len(self.queries),
        }
