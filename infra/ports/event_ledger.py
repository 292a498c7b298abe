"""The event ledger port: what the feature job must remember between batches to be exactly-once.

Two things, both keyed so that a replayed batch decides exactly as the first attempt did:

- **Claims.** Each accepted event's id is claimed by the first record that carried it (its
  *claimant*: batch, partition and offset). A later record with the same id, in any batch or
  partition, loses the claim and is a duplicate; the claimant itself, replayed, wins again.
  Claims expire after the deduplication horizon.
- **Watermarks.** Each partition's event-time watermark (the newest event time it has seen),
  recorded per batch with the value it had before the batch, so that a replay of the batch
  reads the same "before" value it read the first time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class EventLedger(Protocol):
    """Raises :class:`~streamrec.infra.errors.StoreUnavailable` when the ledger cannot answer."""

    def claim(self, claims: Sequence[tuple[str, str]], ttl_seconds: int) -> list[bool]:
        """For each ``(event_id, claimant)``, whether that claimant holds the event's claim."""

    def watermarks(self, topic: str, batch_id: int) -> dict[int, int]:
        """Each partition's watermark (ms) as it was before ``batch_id``; absent if none yet."""

    def record_watermarks(self, topic: str, batch_id: int, after: Mapping[int, int]) -> None:
        """Records the partitions' watermarks after ``batch_id``; idempotent for a replay."""
