"""Warm starts: a new fit that begins from the serving version's weights.

Retraining on the newest window from scratch relearns what the last version knew; starting
from it converges in fewer epochs and keeps items that are quiet this window. The item
vocabulary grows: rows of items the old version knew are copied, new items start from the
fresh initialisation. The user side needs nothing: the query tower reads histories, not ids.
Every other weight is copied as is, so the architecture must match.
"""

from __future__ import annotations

import numpy as np

from streamrec.infra.config import TrainingConfig
from streamrec.infra.contracts.export_layout import ModelVersion
from streamrec.infra.errors import StreamrecError
from streamrec.training.query_tower import FIRST_ITEM
from streamrec.training.two_tower import TwoTowerModel, build_two_tower


def warm_start(
    model: TwoTowerModel, version: ModelVersion, history_length: int, params: TrainingConfig
) -> dict:
    """Copies ``version``'s weights into ``model`` (built); returns what was kept."""
    metadata = version.metadata()
    wanted = (f"two_tower/{params.query_encoder}", params.embedding_dim, history_length)
    found = (metadata.get("model"), metadata.get("embedding_dim"), metadata.get("history_length"))
    if found != wanted or not version.weights_index_file.is_file():
        raise StreamrecError(
            f"cannot warm-start from version {version.version}: it is {found} with"
            f"{'' if version.weights_index_file.is_file() else 'out'} weights, this run is "
            f"{wanted}; train without --warm-start once"
        )
    old_items = version.item_ids_file.read_text().splitlines()
    old = build_two_tower(old_items, np.zeros(len(old_items) + FIRST_ITEM), history_length, params)
    old.build_variables()
    old.query_tower.load_weights(str(version.weights_prefix)).expect_partial()
    new_items = model.vocabulary.item_ids
    rows = {item: FIRST_ITEM + row for row, item in enumerate(old_items)}
    for source, target in zip(old.query_tower.weights, model.query_tower.weights, strict=True):
        if target is model.item_embedding.embeddings:
            target.assign(_grown(source.numpy(), target.numpy(), new_items, rows))
        else:
            target.assign(source)
    kept = sum(item in rows for item in new_items)
    return {"from_version": version.version, "items_kept": kept, "items_new": len(new_items) - kept}


def _grown(
    old: np.ndarray, fresh: np.ndarray, items: list[str], rows: dict[str, int]
) -> np.ndarray:
    table = fresh.copy()
    table[:FIRST_ITEM] = old[:FIRST_ITEM]  # padding, unknown and start keep what they learned
    for row, item in enumerate(items):
        if item in rows:
            table[FIRST_ITEM + row] = old[rows[item]]
    return table
