"""Warm starts: a new fit that begins from the serving version's weights.

Retraining on the newest window from scratch relearns what the last version knew; starting
from it converges in fewer epochs and keeps items that are quiet this window. The item
vocabulary grows: rows of items the old version knew are copied, new items start from the
fresh initialisation. The user side needs nothing: the query tower reads histories, not ids.
Every other weight is copied as is, so the architecture must match, except that a version
trained before event context or request context existed warm-starts a run that reads them:
those embeddings start fresh.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.core.config import TrainingConfig
from streamrec.infra.core.errors import StreamrecError
from streamrec.training.item_features import ItemFeatures
from streamrec.training.query_tower import FIRST_ITEM
from streamrec.training.two_tower import TwoTowerModel, build_two_tower


def warm_start(
    model: TwoTowerModel, version: ModelVersion, history_length: int, params: TrainingConfig
) -> dict:
    """Copies ``version``'s weights into ``model`` (built); returns what was kept."""
    metadata = version.metadata()
    old_categories = metadata.get("item_features", {}).get("category_names", [])
    old_parameters = metadata.get("parameters", {})
    wanted = (
        f"two_tower/{params.query_encoder}",
        params.embedding_dim,
        history_length,
        f"{params.blocks}x{params.heads}",
    )
    found = (
        metadata.get("model"),
        metadata.get("embedding_dim"),
        metadata.get("history_length"),
        # versions from before these settings had 2 blocks of 2 heads
        f"{old_parameters.get('blocks', 2)}x{old_parameters.get('heads', 2)}",
    )
    had_context = old_parameters.get("event_context", False)
    had_request_context = old_parameters.get("request_context", False)
    for name, had, has in (
        ("event_context", had_context, params.event_context),
        ("request_context", had_request_context, params.request_context),
    ):
        if had and not has:
            raise StreamrecError(
                f"cannot warm-start from version {version.version}: it reads "
                f"{name.replace('_', ' ')} and this run does not; set training.{name} back on "
                "or train without --warm-start"
            )
    both_or_neither = bool(old_categories) == (model.item_tower.categories is not None)
    if found != wanted or not version.weights_index_file.is_file() or not both_or_neither:
        raise StreamrecError(
            f"cannot warm-start from version {version.version}: it is {found} "
            f"{'with' if old_categories else 'without'} item categories and "
            f"{'' if version.weights_index_file.is_file() else 'no '}weights, this run is "
            f"{wanted}; train without --warm-start once"
        )
    old_items = version.item_ids_file.read_text().splitlines()
    old_features = ItemFeatures(old_categories, ItemFeatures.none(len(old_items)).rows)
    old_params = dataclasses.replace(
        params, event_context=had_context, request_context=had_request_context
    )
    old = build_two_tower(
        old_items, np.zeros(len(old_items) + FIRST_ITEM), history_length, old_params, old_features
    )
    old.build_variables()
    old.query_tower.load_weights(str(version.weights_prefix)).expect_partial()
    new_items = model.vocabulary.item_ids
    rows = {item: FIRST_ITEM + row for row, item in enumerate(old_items)}
    grown = {id(model.item_tower.ids.embeddings): (new_items, rows, FIRST_ITEM)}
    if old_categories:
        category_rows = {name: 1 + row for row, name in enumerate(old_categories)}
        names = model.item_tower.category_names
        grown[id(model.item_tower.categories.embeddings)] = (names, category_rows, 1)
    # A version from before event or request context lacks their embeddings: they start fresh.
    fresh = set() if had_context else {id(w) for w in _weights(model.query_tower.context)}
    if not had_request_context:
        fresh |= {id(w) for w in _weights(model.query_tower.request_context)}
    targets = [w for w in model.query_tower.weights if id(w) not in fresh]
    for source, target in zip(old.query_tower.weights, targets, strict=True):
        if id(target) in grown:
            target.assign(_grown(source.numpy(), target.numpy(), *grown[id(target)]))
        else:
            target.assign(source)
    kept = sum(item in rows for item in new_items)
    return {"from_version": version.version, "items_kept": kept, "items_new": len(new_items) - kept}


def _weights(layer: object | None) -> list:
    return layer.weights if layer is not None else []


def _grown(
    old: np.ndarray, fresh: np.ndarray, names: list[str], rows: dict[str, int], reserved: int
) -> np.ndarray:
    """``fresh`` with the rows of the names ``old`` knew (by name) and its reserved rows."""
    table = fresh.copy()
    table[:reserved] = old[:reserved]  # padding, unknown and start keep what they learned
    for row, name in enumerate(names, start=reserved):
        if name in rows:
            table[row] = old[rows[name]]
    return table
