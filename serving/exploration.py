"""Exploration slots: a share of each answer given to items the model would not have shown.

A model trained only on what it showed learns only about what it showed; a few uniformly drawn
items per answer let the events that follow tell it about the rest of the catalog, and make
an unbiased sample for offline evaluation. Off by default (``serving.exploration_share`` 0):
each slot costs a little precision now.
"""

from __future__ import annotations

import random

import numpy as np

from streamrec.serving.item_filter import ItemFilter

_TRIES_PER_SLOT = 20


def explore(
    items: list[tuple[str, float]],
    k: int,
    catalog: np.ndarray,
    admitted: ItemFilter,
    share: float,
    rng: random.Random,
) -> tuple[list[tuple[str, float]], frozenset[str]]:
    """``items`` (best first) with ``round(k * share)`` of their last slots given to items
    drawn uniformly from the admitted ``catalog``, each put at a random position; returns the
    answer and the drawn items. Fewer are drawn if the catalog has too few admitted others."""
    slots = min(len(items), round(k * share))
    if slots <= 0:
        return items, frozenset()
    kept = items[: len(items) - slots]
    taken = {item for item, _ in items}  # drawn: items the ranking would not have shown
    drawn: list[str] = []
    for _ in range(slots * _TRIES_PER_SLOT):
        if len(drawn) == slots:
            break
        candidate = str(catalog[rng.randrange(len(catalog))])
        if candidate not in taken and admitted.admits(candidate):
            taken.add(candidate)
            drawn.append(candidate)
    answer = list(kept) + items[len(kept) + len(drawn) :][: slots - len(drawn)]
    for item in drawn:
        answer.insert(rng.randrange(len(answer) + 1), (item, 0.0))
    return answer, frozenset(drawn)
