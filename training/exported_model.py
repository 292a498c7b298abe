"""An exported model version as the evaluation role scores it: exactly what serving loads,
read through the one reader of the layout (:mod:`~streamrec.infra.contracts.exported_version`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.contracts.exported_version import (
    QueryBatch,
    load_exported_version,
    signature_inputs,
)
from streamrec.infra.contracts.item_neighbours import ItemNeighbours, NeighbourBoost
from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.infra.core.errors import StreamrecError
from streamrec.training.evaluate import EmbeddingScorer, ItemBoosts, summed_boosts
from streamrec.training.neighbour_lists import neighbour_boosts
from streamrec.training.queries import Catalog, Queries
from streamrec.training.request_context import split_tokens
from streamrec.training.window_popularity import WindowPopularity

_CHUNK = 1024


def exported_scorer(
    version: ModelVersion,
    catalog: Catalog,
    popularity: WindowPopularity,
    name: str | None = None,
) -> EmbeddingScorer:
    """Scores with the version's SavedModel and item embeddings, aligned to ``catalog``, and
    its boosts: its popularity prior, if it has one, counted by ``popularity`` as serving
    would have; its neighbour lists, if it serves them."""
    exported = load_exported_version(version)
    prior = PopularityPrior.from_metadata(exported.metadata)
    embeddings = exported.item_embeddings
    rows = {item: row for row, item in enumerate(exported.item_ids.tolist())}
    aligned = np.full((len(catalog), embeddings.shape[1]), np.nan, dtype=np.float32)
    known = [(column, rows[item]) for column, item in enumerate(catalog.item_ids) if item in rows]
    if known:
        columns, source = zip(*known, strict=True)
        aligned[list(columns)] = embeddings[list(source)]

    def encode(queries: Queries) -> np.ndarray:
        parts = [
            exported.query_embeddings(query_batch(queries.select(slice(start, start + _CHUNK))))
            for start in range(0, len(queries), _CHUNK)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, embeddings.shape[1]), np.float32)

    boosts = summed_boosts(
        popularity.boosts(prior) if prior else None,
        _neighbour_boosts(version, exported.metadata, exported.item_ids, catalog),
    )
    return EmbeddingScorer(name or f"version {version.version}", encode, aligned, boosts)


def _neighbour_boosts(
    version: ModelVersion, metadata: dict, item_ids: np.ndarray, catalog: Catalog
) -> ItemBoosts | None:
    """The version's neighbour lists over ``catalog``'s columns, if it serves them."""
    boost = NeighbourBoost.from_metadata(metadata)
    if boost is None:
        return None
    try:
        lists = ItemNeighbours.load(version.item_neighbours_file)
    except (OSError, ValueError, KeyError) as exc:
        raise StreamrecError(f"cannot load the item neighbours of {version.root}: {exc}") from exc
    index = catalog.index()
    columns = np.array([index.get(item, -1) for item in item_ids[: lists.rows].tolist()], np.int64)
    return neighbour_boosts(lists, boost, columns, len(catalog))


def query_inputs(queries: Queries) -> dict[str, tf.Tensor]:
    """The serving signature's inputs for ``queries``, as a trained tower takes them."""
    return signature_inputs(query_batch(queries))


def tower_embeddings(tower: tf.keras.Model, queries: Queries, length: int) -> np.ndarray:
    """The query embeddings [n, d] of a trained (not exported) query tower of history
    ``length``, in chunks; longer histories are cut to their newest ``length`` items."""
    queries = queries.newest(length)
    parts = [
        tower(query_inputs(queries.select(slice(start, start + _CHUNK)))).numpy()
        for start in range(0, len(queries), _CHUNK)
    ]
    return np.concatenate(parts)


def query_batch(queries: Queries) -> QueryBatch:
    return QueryBatch(
        user_ids=queries.user_ids,
        histories=queries.histories,
        history_times=queries.history_times,
        history_types=queries.history_types,
        request_times=queries.timestamps,
        contexts=[split_tokens(c) for c in queries.contexts],
    )
