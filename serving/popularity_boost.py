"""A version's popularity prior at serving: its boosts, as it was evaluated.

The prior (:mod:`~streamrec.infra.contracts.popularity_prior`) adds ``weight * ln(1 + count)``
to the dot product of the ``depth`` items a popularity window counts most, and nothing to any
other item, so :func:`.boosted_top_k.boosted_top_k` finds the exact top k with the one index
search serving makes anyway.

The counts come from the catalog view (:mod:`.catalog_view`), a snapshot read again every
``serving.catalog_refresh_seconds`` and kept while the online store is down. The boosts of one
snapshot serve every request until the next, so their rows' embeddings are gathered once into
one contiguous ``[depth, dim]`` matrix, not per request from the (memory-mapped) catalog.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.infra.contracts.popularity_prior import PopularityPrior
from streamrec.serving.boosted_top_k import RowBoosts, VectorsOf


def popularity_boosts(
    prior: PopularityPrior,
    counts: Sequence[tuple[str, float]],
    model_rows: dict[str, int],
    vectors_of: VectorsOf,
) -> RowBoosts:
    """The boosts of one snapshot of the prior window's ``counts`` (most counted first), for
    the items the model knows."""
    known = [
        (model_rows[item], count) for item, count in counts[: prior.depth] if item in model_rows
    ]
    rows = np.array([row for row, _ in known], np.int64)
    values = prior.boosts(np.array([count for _, count in known], np.float64))
    return RowBoosts(rows, values, vectors_of, shared=True)
