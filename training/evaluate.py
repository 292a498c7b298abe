"""The evaluation role: models and baselines ranked on the same held-out queries, in one run.

Used by ``streamrec evaluate`` and by the trainer's promotion gate. Protocols:

- ``temporal``: every held-out example is a query (the newest fraction of the examples);
- ``leave-last-out``: each user's last held-out example only, so heavy users count once.

Baselines (:mod:`.baselines`) are fitted on the same window's training part. Ranking is over
the whole catalog with ties against the model (:mod:`.evaluation`); with ``exclude_seen`` the
items of a query's history are removed before ranking, as serving would filter them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamrec.infra.contracts import feature_spec as spec
from streamrec.training.baselines import ItemToItem, MostPopular, item_to_item
from streamrec.training.data_window import DataWindow
from streamrec.training.evaluation import Rankings, metrics, rank_all
from streamrec.training.intervals import Bootstrap, per_query_metrics
from streamrec.training.queries import Catalog, Queries

PROTOCOLS = ("temporal", "leave-last-out")
CURVE_KS = (1, 2, 5, 10, 20, 50, 100)
HISTORY_BUCKETS = ((0, 0), (1, 2), (3, 5), (6, 10), (11, 10**9))

QueryEncoder = Callable[[Queries], np.ndarray]  # queries -> their embeddings [n, d]
ItemBoosts = Callable[[Queries, slice], np.ndarray]  # (queries, rows) -> [rows, catalog]


def summed_boosts(*boosts: ItemBoosts | None) -> ItemBoosts | None:
    """The sum of the boosts given (None ones left out); None if none is given."""
    given = [boost for boost in boosts if boost is not None]
    if len(given) <= 1:
        return given[0] if given else None
    return lambda queries, rows: sum(boost(queries, rows) for boost in given)


class Scorer(Protocol):
    name: str

    def scores(self, queries: Queries, rows: slice) -> np.ndarray:
        """Scores of the queries ``rows``: one row per query, one column per catalog item."""


@dataclass(frozen=True)
class EmbeddingScorer:
    """A two-tower model: query embeddings dotted with the catalog's item embeddings, plus the
    boosts serving adds to them (a version's popularity prior and neighbour lists), if any."""

    name: str
    encode: QueryEncoder
    item_embeddings: np.ndarray  # [catalog, d]; rows of items the model does not know are NaN
    boosts: ItemBoosts | None = None

    def scores(self, queries: Queries, rows: slice) -> np.ndarray:
        query = self.encode(queries.select(rows))
        scores = np.nan_to_num(query @ self.item_embeddings.T, nan=-np.inf)
        if self.boosts is not None:
            scores += self.boosts(queries, rows)
        return scores


@dataclass(frozen=True)
class Evaluation:
    """Queries, catalog and baselines of one window, ready to rank any number of models."""

    queries: Queries
    catalog: Catalog
    baselines: list
    popularity_rank: np.ndarray  # per catalog item: 0 is the most frequent training target
    protocol: str
    exclude_seen: bool

    @classmethod
    def prepare(
        cls,
        window: DataWindow,
        catalog: Catalog,
        protocol: str,
        exclude_seen: bool = False,
        item_baseline: ItemToItem | None = None,
    ) -> Evaluation:
        """``item_baseline``: the item-to-item baseline of the window's training part over
        ``catalog``, if the caller fitted it already (it is the costliest part)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        queries = Queries.from_examples(window.holdout, catalog)
        if protocol == "leave-last-out":
            queries = queries.last_per_user()
        train = window.train_mask
        index = catalog.index()
        train_items = np.array([index.get(i, -1) for i in window.events[spec.ITEM_ID][train]])
        counts = np.bincount(train_items[train_items >= 0], minlength=len(catalog))
        users = window.events[spec.USER_ID][train]
        if item_baseline is None:
            item_baseline = item_to_item(users, train_items, len(catalog))
        baselines = [MostPopular(counts), item_baseline]
        popularity_rank = np.empty(len(catalog), dtype=np.int64)
        popularity_rank[np.argsort(-counts, kind="stable")] = np.arange(len(catalog))
        return cls(queries, catalog, baselines, popularity_rank, protocol, exclude_seen)

    def run(self, models: Sequence[Scorer], ks: Sequence[int]) -> dict:
        """Metrics of every model and baseline with their 95% intervals, the breakdowns the
        report plots, and the first model's differences from every other, with intervals."""
        results, per_query = {}, {}
        max_k = max(*ks, *CURVE_KS)
        exclude = self.queries.history_index if self.exclude_seen else None
        bootstrap = Bootstrap(self.queries.user_ids)
        for scorer in [*models, *self.baselines]:
            rankings = rank_all(
                lambda rows, s=scorer: s.scores(self.queries, rows),
                self.queries.targets,
                max_k,
                exclude,
            )
            per_query[scorer.name] = per_query_metrics(rankings.ranks, ks)
            results[scorer.name] = {
                **metrics(rankings, ks, self.popularity_rank),
                "intervals": {
                    metric: bootstrap.interval(values)
                    for metric, values in per_query[scorer.name].items()
                },
                "curve": {str(k): float(np.mean(rankings.ranks < k)) for k in CURVE_KS},
                **self._breakdowns(rankings, min(ks)),
            }
        return {
            "protocol": self.protocol,
            "exclude_seen": self.exclude_seen,
            "ks": list(ks),
            "queries": len(self.queries),
            "users": len(np.unique(self.queries.user_ids)),
            "catalog_items": len(self.catalog),
            "models": results,
            "differences": _differences(per_query, bootstrap),
        }

    def _breakdowns(self, rankings: Rankings, k: int) -> dict:
        hits = rankings.ranks < k
        lengths = self.queries.history_lengths()
        by_length = {
            f"{low}-{high}" if high < 10**9 else f"{low}+": _mean(
                hits[(lengths >= low) & (lengths <= high)]
            )
            for low, high in HISTORY_BUCKETS
        }
        targets = self.queries.targets
        decile = np.where(targets >= 0, self.popularity_rank[targets] * 10 // len(self.catalog), 9)
        by_decile = {str(d + 1): _mean(hits[decile == d]) for d in range(10)}
        return {
            f"recall@{k}_by_history_length": by_length,
            f"recall@{k}_by_target_popularity_decile": by_decile,
        }


def _differences(per_query: dict[str, dict[str, np.ndarray]], bootstrap: Bootstrap) -> dict:
    """The first model's metrics minus each other model's, paired over the same queries."""
    first, *others = per_query
    against = {
        other: {
            metric: {
                "difference": float(np.mean(values - per_query[other][metric])),
                "interval": bootstrap.interval(values - per_query[other][metric]),
            }
            for metric, values in per_query[first].items()
        }
        for other in others
    }
    return {"of": first, "against": against}


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
