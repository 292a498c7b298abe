"""The popularity prior a version is served with: chosen by training, applied by serving.

A version's score for an item is its dot product plus a boost for being bought (viewed,
clicked) often lately::

    score(item) = query · item + weight * ln(1 + count(item))

``count`` is the item's events in the popularity window ``window`` (one of
``features.popularity_windows``) as the online store counts them, for the ``depth`` items it
counts most (ties: the greater item id first, as Redis orders them), and 0 for every other item.

Why a prior at all: a two-tower model learns what a user's history says about the next item,
not which items sell this week; a stream's recent best-sellers are a strong signal of their own
that the model's embeddings, trained on months, smooth away. Training chooses ``weight`` on
its validation share, so a stream where recency says nothing gets weight 0 (no prior).

Why only the ``depth`` most counted: serving reads them in one call and keeps them in memory,
and because the boost is never negative and 0 outside them, the model's own top k together
with those items hold the exact top k of the boosted score; no deeper search is needed.

Windows slide in steps (:func:`window_step_ms`): a window of length L at watermark W counts
the events of the steps that end after W - L, so it spans between L - step and L. The
evaluation replays that, so it ranks what serving would have ranked at each query's time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METADATA_KEY = "popularity_prior"  # the entry of a version's metadata.json
_MINUTE_MS = 60_000
_STEPS_PER_WINDOW = 24


def window_step_ms(length_ms: int) -> int:
    """How far a popularity window of ``length_ms`` slides at once: a 24th of it, in whole
    minutes, at least one. The online store keeps one bucket of counts per step."""
    return max(_MINUTE_MS, length_ms // _STEPS_PER_WINDOW // _MINUTE_MS * _MINUTE_MS)


def window_start_ms(watermark_ms: int | np.ndarray, length_ms: int) -> int | np.ndarray:
    """The first time a window of ``length_ms`` still counts at ``watermark_ms``: the start
    of the first step that ends after ``watermark_ms - length_ms``."""
    step = window_step_ms(length_ms)
    return ((watermark_ms - length_ms) // step + 1) * step


@dataclass(frozen=True)
class PopularityPrior:
    window: str  # a name of features.popularity_windows, "7d"
    depth: int  # how many of the window's most counted items are boosted
    weight: float  # in units of the dot product; 0 is no prior

    def __post_init__(self) -> None:
        if self.depth < 1 or not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(
                f"popularity prior: depth must be 1 or more and weight finite and 0 or more, "
                f"got {self.depth} and {self.weight}"
            )

    def boosts(self, counts: np.ndarray) -> np.ndarray:
        """``weight * ln(1 + counts)``, of the counts of items within ``depth`` (others 0)."""
        return self.weight * np.log1p(np.asarray(counts, dtype=np.float64))

    def to_metadata(self) -> dict:
        return {"window": self.window, "depth": self.depth, "weight": self.weight}

    @classmethod
    def from_metadata(cls, metadata: dict) -> PopularityPrior | None:
        """The version's prior, or None if it has none (older versions) or its weight is 0."""
        described = metadata.get(METADATA_KEY)
        if not described or not described.get("weight"):
            return None
        return cls(str(described["window"]), int(described["depth"]), float(described["weight"]))
