"""95% bootstrap intervals of ranking metrics, resampling users.

An evaluation's figure is a mean over held-out queries, and two models' figures differ by
noise as well as by quality. The queries of one user are not independent: a heavy user's many
held-out events are found or missed together. Resampling queries would make intervals too
narrow, so users are resampled instead (a cluster bootstrap), each with all of their queries.

Every model is measured on the same resamples, so a difference between two models is paired:
what they share (the users every model finds hard) cancels, and the interval of a difference
is narrower than either model's own. The promotion gate reads these intervals
(:mod:`.gate`).
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95


class Bootstrap:
    """Resampling weights of the users of a set of queries, ``[resamples, users]``."""

    def __init__(self, users: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> None:
        names, self._user_of_query = np.unique(np.asarray(users), return_inverse=True)
        self._users = len(names)
        rng = np.random.default_rng(seed)
        shares = np.full(max(self._users, 1), 1.0 / max(self._users, 1))
        counts = rng.multinomial(self._users, shares, size=resamples)[:, : self._users]
        self._weights = counts.astype(np.float64)
        self._counts = self._weights @ np.bincount(self._user_of_query, minlength=self._users)

    def means(self, values: np.ndarray) -> np.ndarray:
        """The mean of per-query ``values`` [queries] in each resample: ``[resamples]``."""
        per_user = np.bincount(self._user_of_query, weights=values, minlength=self._users)
        return (self._weights @ per_user) / np.maximum(self._counts, 1.0)

    def interval(self, values: np.ndarray) -> list[float] | None:
        """The central 95% of the resampled means; None without queries."""
        if not len(values):
            return None
        tail = (1.0 - LEVEL) / 2 * 100
        low, high = np.percentile(self.means(values), [tail, 100 - tail])
        return [float(low), float(high)]


def per_query_metrics(ranks: np.ndarray, ks: tuple[int, ...] | list[int]) -> dict[str, np.ndarray]:
    """Each query's contribution to the mean metrics: ``mrr``, ``recall@k``, ``ndcg@k``."""
    values = {"mrr": 1.0 / (ranks + 1.0)}
    for k in ks:
        hits = ranks < k
        values[f"recall@{k}"] = hits.astype(np.float64)
        values[f"ndcg@{k}"] = np.where(hits, 1.0 / np.log2(ranks + 2.0), 0.0)
    return values
