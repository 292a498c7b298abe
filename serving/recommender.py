"""The ranking role's logic, free of gRPC: a request in, ranked items and their source out.

Every answer starts from the user's newest history in the online store, so an event the
feature job has written changes the next answer. The result cache is keyed by that history
(among everything else the answer depends on), so a hit can never be staler than it. When
the store cannot answer, the model still serves users whose history this process has read
before, and popular items it has read before serve everyone else (``source`` fallback).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import orjson

from streamrec.infra.contracts.feature_spec import context_tokens
from streamrec.infra.core.config import Config
from streamrec.infra.core.errors import StoreUnavailable, StreamrecError
from streamrec.infra.storage.ports.online_store import HistoryEntry, OnlineStore, UserHistory
from streamrec.infra.storage.ports.result_cache import RankedItems, ResultCache
from streamrec.serving.boosted_top_k import RowBoosts, boosted_ranking, boosted_top_k
from streamrec.serving.catalog_view import CatalogView, StoreSnapshots
from streamrec.serving.exploration import explore
from streamrec.serving.item_filter import ItemFilter
from streamrec.serving.popularity_boost import popularity_boosts
from streamrec.serving.recent_histories import RecentHistories
from streamrec.serving.retrieval_model import RetrievalModel

log = logging.getLogger(__name__)

MODEL, CACHE, FALLBACK = "model", "cache", "fallback"
NO_HISTORY, STORE_UNAVAILABLE = "no_history", "online_store_unavailable"


class NothingToServe(StreamrecError):
    """No answer honours the request: the store is down and nothing usable is in memory."""


@dataclass(frozen=True)
class RecommendCall:
    user_id: str
    k: int
    exclude_item_ids: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    context: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs


@dataclass(frozen=True)
class Answer:
    items: list[tuple[str, float]]  # best first
    model_version: int
    source: str  # MODEL, CACHE or FALLBACK
    fallback_reason: str = ""
    unknown_item_ids: tuple[str, ...] = ()  # Rank only
    explored: frozenset[str] = frozenset()  # Recommend: items in exploration slots


class Recommender:
    """One facade for the ranking role: Recommend and Rank over the current model."""

    def __init__(
        self,
        config: Config,
        model: RetrievalModel,
        store: OnlineStore,
        cache: ResultCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model  # replaced whole on reload; read once per request
        self._store = store
        self._cache = cache
        self._clock = clock
        serving = config.serving
        self._exclude_seen = serving.exclude_seen
        self._online_history_length = config.features.online_history_length
        self._histories = RecentHistories(serving.remembered_histories)
        self._exploration_share = serving.exploration_share
        self._random = random.Random()
        # The boosts of the newest counts read, for the model they were made for.
        self._kept_boosts: tuple[object, RetrievalModel, RowBoosts] | None = None
        self._warned: set[int] = set()  # versions whose prior's window the store lacks
        self.catalog = CatalogView(
            store,
            _windows_from(config, serving.popularity_window),
            popular_depth=serving.max_k + serving.max_excluded_items + self._online_history_length,
            snapshots=StoreSnapshots(serving.catalog_refresh_seconds),
        )

    def prefetch(self) -> None:
        """Reads what cold start and the filters need, so the server has it in memory before
        its first request, and while the store is down if it goes down early."""
        try:
            self.catalog.popular()
            self.catalog.unavailable()
            self._prior_boosts(self.model)
        except StoreUnavailable as exc:
            log.warning("could not prefetch popular and unavailable items: %s", exc)

    def recent_requests(self, n: int) -> list[tuple[str, list[HistoryEntry]]]:
        """Up to ``n`` users served lately with the history they were served from."""
        return [(user, history.entries) for user, history in self._histories.latest(n)]

    def recommend(self, call: RecommendCall) -> Answer:
        answer, history = self._recommend(call)
        if not self._exploration_share:
            return answer
        admitted = self._filter(call, history.entries if history else [])
        items, drawn = explore(
            answer.items, call.k, self.model.item_ids, admitted, self._exploration_share,
            self._random,
        )  # fmt: skip
        return dataclasses.replace(answer, items=items, explored=drawn)

    def _recommend(self, call: RecommendCall) -> tuple[Answer, UserHistory | None]:
        model = self.model
        history, fresh = self._history(model, call.user_id)
        if not history:
            reason = NO_HISTORY if fresh else STORE_UNAVAILABLE
            popular = self._popular(call.k, self._filter(call, []))
            return Answer(popular, model.version, FALLBACK, reason), history
        # A remembered history (the store is down) is looked up too: the process's near
        # cache still answers it, so an outage does not make every answer a model call.
        key = _cache_key(model.version, call, history.signature, self._exclude_seen)
        cached = self._cached(key)
        if cached is not None and self._still_admitted(call, cached):
            return _answer(cached, model.version, CACHE, fresh), history
        items = self._retrieve(model, call, history)
        self._put(key, items)
        return _answer(items, model.version, MODEL, fresh), history

    def rank(
        self, user_id: str, candidates: list[str], context: Mapping[str, str] | None = None
    ) -> Answer:
        model = self.model
        history, fresh = self._history(model, user_id)
        query = self._query(model, user_id, history.entries if history else [], context or {})
        ranked, unknown = model.rank(query, candidates)
        boosts = self._boosts(model, history.entries if history else [])
        if boosts is not None:
            ranked = boosted_ranking(ranked, boosts, model.rows)
        source, reason = (MODEL, "") if fresh else (FALLBACK, STORE_UNAVAILABLE)
        unknown_items = [(item, float("-inf")) for item in unknown]
        return Answer(ranked + unknown_items, model.version, source, reason, tuple(unknown))

    def _history(self, model: RetrievalModel, user_id: str) -> tuple[UserHistory | None, bool]:
        """The user's newest history and whether it is fresh from the store; else the one
        this process last read, if any. As long as the model reads or the online store keeps,
        so that every item left out as seen is."""
        limit = max(self._online_history_length, model.history_length)
        try:
            # Bounded by serving.store_timeout_ms; a store that keeps failing is not called
            # for a while (its client's circuit breaker), so an outage costs no request more.
            history = self._store.recent_history(user_id, limit)
        except StoreUnavailable as exc:
            log.debug("serving without the online store: %s", exc)
            return self._histories.recall(user_id), False
        self._histories.remember(user_id, history)
        return history, True

    def _retrieve(
        self, model: RetrievalModel, call: RecommendCall, history: UserHistory
    ) -> list[tuple[str, float]]:
        query = self._query(model, call.user_id, history.entries, dict(call.context))
        admitted = self._filter(call, history.entries)
        items = model.top_k(query, call.k, admitted)
        boosts = self._boosts(model, history.entries)
        if boosts is None:
            return items
        return boosted_top_k(items, boosts, query, model.rows, model.item_ids, admitted, call.k)

    def _boosts(self, model: RetrievalModel, history: list[HistoryEntry]) -> RowBoosts | None:
        """What the model adds to its dot products for this history: its popularity prior's
        boosts and its neighbour lists' (:mod:`.boosted_top_k`); None if neither has any."""
        prior = self._prior_boosts(model)
        if model.neighbours is None or model.neighbour_boost is None:
            return prior
        read = {model.rows.get(entry.item_id) for entry in history[: model.neighbour_boost.history]}
        rows, values = model.neighbours.of(np.array(sorted(read - {None}), np.int64))
        if not len(rows):
            return prior
        values = model.neighbour_boost.weight * values
        if prior is None:
            return RowBoosts(rows, values, model.index.vectors, by_row=True)
        return prior.plus(rows, values)

    def _prior_boosts(self, model: RetrievalModel) -> RowBoosts | None:
        """The boosts of the model's popularity prior, from the newest counts read; None if it
        has none, or if no counts were ever read (the store is down since the start)."""
        prior = model.popularity_prior
        if prior is None:
            return None
        try:
            counts = self.catalog.window_counts(prior.window, prior.depth)
        except StoreUnavailable as exc:
            log.debug("serving without the popularity prior: %s", exc)
            return None
        except ValueError as exc:  # a window the online store does not keep
            if model.version not in self._warned:
                log.warning("version %s serves without its prior: %s", model.version, exc)
                self._warned.add(model.version)
            return None
        kept = self._kept_boosts
        if kept is None or kept[0] is not counts or kept[1] is not model:
            boosts = popularity_boosts(prior, counts, model.rows, model.index.vectors)
            kept = (counts, model, boosts)
            self._kept_boosts = kept  # one assignment: threads see the old or the new
        return kept[2]

    def _query(
        self,
        model: RetrievalModel,
        user_id: str,
        history: list[HistoryEntry],
        context: Mapping[str, str],
    ) -> np.ndarray:
        now_ms = int(self._clock() * 1000)
        return model.query_embedding(user_id, history, now_ms, context_tokens(context))

    def _filter(self, call: RecommendCall, history: list[HistoryEntry]) -> ItemFilter:
        excluded = set(call.exclude_item_ids)
        if self._exclude_seen:
            excluded.update(entry.item_id for entry in history)
        return dataclasses.replace(self._catalog_filter(call), excluded=frozenset(excluded))

    def _still_admitted(self, call: RecommendCall, items: list[tuple[str, float]]) -> bool:
        """The cache key covers the request and the history, but the catalog may have changed
        since the answer was cached."""
        admitted = self._catalog_filter(call)
        ids = [item for item, _ in items]
        return all(blocked.isdisjoint(ids) for blocked in admitted.blocked) and (
            admitted.allowed is None or admitted.allowed.issuperset(ids)
        )

    def _catalog_filter(self, call: RecommendCall) -> ItemFilter:
        """What the catalog rules out for this request: unavailable items and categories."""
        blocked = []
        try:
            blocked.append(self.catalog.unavailable())
        except StoreUnavailable as exc:  # better to serve than to refuse over this
            log.warning("unavailable items unknown, not filtered: %s", exc)
        try:
            if call.exclude_categories:
                blocked.append(self.catalog.in_categories(call.exclude_categories))
            allowed = (
                self.catalog.in_categories(call.include_categories)
                if call.include_categories
                else None
            )
        except StoreUnavailable as exc:
            raise NothingToServe(f"cannot apply the category filters: {exc}") from exc
        return ItemFilter(blocked=tuple(blocked), allowed=allowed)

    def _popular(self, k: int, admitted: ItemFilter) -> list[tuple[str, float]]:
        """Popular items, then the rest of the model's catalog (no events in any window), so
        that filters still leave ``k`` when the catalog allows."""
        try:
            popular = self.catalog.popular()
        except StoreUnavailable as exc:
            raise NothingToServe(f"no history and no popular items in memory: {exc}") from exc
        listed = {item for item, _ in popular}
        # Lazily: the rest of a million-item catalog is read only as far as the filters need.
        rest = ((str(item), 0.0) for item in self.model.item_ids if item not in listed)
        ranked = itertools.chain(popular, rest)
        return list(itertools.islice((p for p in ranked if admitted.admits(p[0])), k))

    def _cached(self, key: str) -> list[tuple[str, float]] | None:
        try:
            cached = self._cache.get(key)
        except StoreUnavailable as exc:  # the cache is an optimisation: a failure is a miss
            log.debug("result cache read failed: %s", exc)
            return None
        return None if cached is None else list(zip(cached.item_ids, cached.scores, strict=True))

    def _put(self, key: str, items: list[tuple[str, float]]) -> None:
        try:
            self._cache.put(key, RankedItems([i for i, _ in items], [s for _, s in items]))
        except StoreUnavailable as exc:
            log.debug("result cache write failed: %s", exc)


def _answer(items: list[tuple[str, float]], version: int, source: str, fresh: bool) -> Answer:
    """An answer from ``source``, or a fallback if the history was not fresh from the store."""
    if fresh:
        return Answer(items, version, source)
    return Answer(items, version, FALLBACK, STORE_UNAVAILABLE)


def _cache_key(version: int, call: RecommendCall, history: bytes, exclude_seen: bool) -> str:
    """Names everything the answer depends on, the history's signature included: a new event
    makes a new key, so the cache never answers from an older history. The one input left out
    is the request time (the newest event's age, in log2 buckets), which the TTL bounds."""
    parts = [
        call.k,
        sorted(call.exclude_item_ids),
        sorted(call.include_categories),
        sorted(call.exclude_categories),
        call.context,
        exclude_seen,
        history.hex(),
    ]
    digest = hashlib.blake2b(orjson.dumps(parts), digest_size=16).hexdigest()
    return f"v{version}:{call.user_id}:{digest}"


def _windows_from(config: Config, first: str) -> list[str]:
    """The popularity windows from ``first`` to the longest, shortest first."""
    lengths = config.features.window_lengths_ms()
    return sorted((w for w in lengths if lengths[w] >= lengths[first]), key=lengths.__getitem__)
