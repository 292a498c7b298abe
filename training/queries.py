"""Evaluation queries: held-out examples, as every scorer (model or baseline) needs them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import HISTORY_PADDING


@dataclass(frozen=True)
class Catalog:
    """The items ranked, in a fixed order; an item's index is its column in every score row."""

    item_ids: np.ndarray  # [items] str

    def index(self) -> dict[str, int]:
        return {item: position for position, item in enumerate(self.item_ids.tolist())}

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True)
class Queries:
    """One query per held-out example: who, what they had done, and what they did next."""

    user_ids: np.ndarray  # [n] str
    histories: np.ndarray  # [n, history_length] str, most recent first, "" padded
    history_index: np.ndarray  # [n, history_length] catalog indices, -1: padding or unknown
    targets: np.ndarray  # [n] catalog index of the next item, -1 if outside the catalog
    timestamps: np.ndarray  # [n] event time, ms: the request time of the query
    history_times: np.ndarray  # [n, history_length] event times, ms, -1 where unknown
    history_types: np.ndarray  # [n, history_length] event types, "" where unknown
    contexts: np.ndarray  # [n] object: the event's context tokens joined (the request's)

    @classmethod
    def from_examples(cls, examples: Mapping[str, np.ndarray], catalog: Catalog) -> Queries:
        """``examples`` hold the events layout's columns; history times and types may be
        missing (examples of feature spec 2 and older carry none), and contexts (before 4)."""
        index = catalog.index()
        histories = np.asarray(examples[spec.HISTORY]).astype(str)
        lookup = np.vectorize(lambda item: -1 if item == HISTORY_PADDING else index.get(item, -1))
        targets = np.asarray(examples[spec.ITEM_ID]).astype(str)
        times = examples.get(spec.HISTORY_TIMESTAMP)
        types = examples.get(spec.HISTORY_EVENT_TYPE)
        contexts = examples.get(spec.CONTEXT_TOKENS)
        return cls(
            user_ids=np.asarray(examples[spec.USER_ID]).astype(str),
            histories=histories,
            history_index=lookup(histories).astype(np.int64) if histories.size else histories,
            targets=np.array([index.get(t, -1) for t in targets], dtype=np.int64),
            timestamps=np.asarray(examples[spec.TIMESTAMP], dtype=np.int64),
            history_times=np.full(histories.shape, -1, np.int64)
            if times is None
            else np.asarray(times, np.int64),
            history_types=np.full(histories.shape, "", object).astype(str)
            if types is None
            else np.asarray(types).astype(str),
            contexts=np.full(len(targets), "", object)
            if contexts is None
            else np.asarray(contexts, object),
        )

    def __len__(self) -> int:
        return len(self.targets)

    def select(self, rows: np.ndarray | Sequence[int]) -> Queries:
        return Queries(
            self.user_ids[rows],
            self.histories[rows],
            self.history_index[rows],
            self.targets[rows],
            self.timestamps[rows],
            self.history_times[rows],
            self.history_types[rows],
            self.contexts[rows],
        )

    def newest(self, length: int) -> Queries:
        """The same queries reading only the newest ``length`` items of their histories, as a
        model trained on that length reads them (the rest may still be left out as seen)."""
        cut = slice(None), slice(0, length)
        return dataclasses.replace(
            self,
            histories=self.histories[cut],
            history_index=self.history_index[cut],
            history_times=self.history_times[cut],
            history_types=self.history_types[cut],
        )

    def last_per_user(self) -> Queries:
        """Each user's latest query only (leave-last-out), in user order."""
        order = np.lexsort((self.timestamps, self.user_ids))
        users = self.user_ids[order]
        last = np.flatnonzero(np.append(users[1:] != users[:-1], True))
        return self.select(order[last])

    def history_lengths(self) -> np.ndarray:
        return (self.histories != HISTORY_PADDING).sum(axis=1)
