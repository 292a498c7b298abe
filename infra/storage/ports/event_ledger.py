"""The event ledger port: what the feature job must remember between batches to be exactly-once.

Three things, each keyed so that a replayed batch decides exactly as the first attempt did:

- **User watermarks.** Each user's event-time watermark: the newest event time accepted on
  their timeline. An event more than the horizon older than its own user's watermark is late.
  Lateness is judged per user, not per partition, because a partition interleaves many users'
  timelines: a history sorted by user, a replay or a merged second source carries one user's
  old events after another user's new ones, and none of them is late on its own timeline.
  Recorded per batch with the value before the batch, so that a replay reads it again.
- **Claims.** Each accepted event's id is claimed by the first record that carried it (its
  *claimant*: batch, partition and offset). A later record with the same id, in any batch or
  partition, loses the claim and is a duplicate; the claimant itself, replayed, wins again.
  The claims a batch holds are filed on their users' timelines, and a claim is kept until its
  event is older than its user's watermark *before a batch* minus the horizon. From then on
  any repeat of the event is late, in that batch, every later one and every replay (each reads
  the same "before"), so the claim is no longer needed. Claims expire on the users' timelines,
  never on a wall clock, so a repeat that comes days later for a user who sent nothing since
  still finds its claim.
- **Partition watermarks.** Each partition's newest event time, recorded per batch like the
  users': the item popularity windows slide to the newest of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol


class Claim(NamedTuple):
    """A record's claim on its event id, and where it sits on its user's timeline."""

    event_id: str
    claimant: str  # "batch:partition:offset" of the record
    user_id: str
    timestamp: int  # event time (ms): the claim is forgotten once the user's timeline passes it


class EventLedger(Protocol):
    """Raises :class:`~streamrec.infra.core.errors.StoreUnavailable` when the ledger cannot
    answer."""

    def claim(self, claims: Sequence[Claim]) -> list[bool]:
        """For each claim, whether its claimant holds the event's claim."""

    def user_watermarks(self, topic: str, batch_id: int, user_ids: Sequence[str]) -> dict[str, int]:
        """These users' watermarks (ms) as they were before ``batch_id``; absent if none yet."""

    def record_users(
        self,
        topic: str,
        batch_id: int,
        after: Mapping[str, int],
        held: Sequence[Claim],
        horizon_ms: int,
    ) -> None:
        """After ``batch_id``: records the users' watermarks (idempotent for a replay), files
        the claims ``held`` in the batch on their users' timelines, and forgets the users'
        claims on events older than their watermark *before* the batch minus ``horizon_ms``.
        A claim may be kept longer than that, never forgotten sooner."""

    def restore_users(
        self, topic: str, batch_id: int, newest: Mapping[str, int], held: Sequence[Claim]
    ) -> None:
        """After the ledger was lost: raises each user's watermark to ``newest`` (recorded as
        of ``batch_id``, the newest batch restored) where it is absent or older, and files the
        claims ``held``, already claimed, on their users' timelines. Never lowers a
        watermark, so it is safe beside a running feature job, and idempotent."""

    def watermarks(self, topic: str, batch_id: int) -> dict[int, int]:
        """Each partition's watermark (ms) as it was before ``batch_id``; absent if none yet."""

    def record_watermarks(self, topic: str, batch_id: int, after: Mapping[int, int]) -> None:
        """Records the partitions' watermarks after ``batch_id``; idempotent for a replay."""

    def replicated(self) -> None:
        """As :meth:`OnlineStore.replicated`, for the ledger."""
