"""A synthetic event stream with planted structure, so model quality can be judged honestly.

Real logs are too small or too private to tell whether a model learns anything beyond
popularity. This generator plants four kinds of signal, each of which a sequence-aware
two-tower model can learn and a most-popular ranking cannot:

1. **Item groups.** Items are dealt into ``groups`` groups (think categories). Each user has a
   primary group (80% of their taste-driven picks) and a secondary group (20%).
2. **Sequential transitions.** Every item has one fixed successor in its own group (the groups
   are shuffled cycles). With probability ``follow_probability`` a user's next event is the
   successor of their previous item: "people who view A next view B".
3. **Popularity skew.** Items carry Zipf(1) weights in a random order; taste-driven picks are
   popularity-weighted within the group, and a ``1 - in_group_probability`` share of picks ignores
   taste and samples the whole catalog by popularity. Popularity is therefore a real but weak
   baseline.
4. **Drifting tastes.** A ``drift_fraction`` of users switch primary group once, somewhere between
   40% and 80% of their history, so recent events predict better than old ones.
5. **Context.** A ``deal_share`` of events happen on the deals surface (context ``surface``
   ``deals``, else ``home``), where the user picks the promoted item of their current taste
   group, whatever came before. Only a model that reads the request's context can tell those
   requests apart, and it needs the history to know the group. Each user also has a fixed
   ``device``, which predicts nothing.

Activity is skewed too (log-normal events per user, at least three each). Timestamps are event
times spread over ``days`` days, strictly increasing per user; the file is sorted by time like a
real stream. Everything is a pure function of the spec, so a seed reproduces a dataset exactly.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from streamrec.infra.contracts.events import EVENT_TYPES, Event
from streamrec.infra.contracts.items import Item

DAY_MS = 86_400_000
DEFAULT_START_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z
MIN_EVENTS_PER_USER = 3
_EVENT_TYPE_WEIGHTS = (0.70, 0.20, 0.06, 0.04)
_DEVICES = ("web", "ios", "android")
_DEALS_STREAM = 5  # seeds the generators of signal 5 apart from the main one


@dataclass(frozen=True)
class SyntheticSpec:
    users: int
    items: int
    events: int
    seed: int = 0
    groups: int = 0  # 0: one group per 40 items, at least 2
    follow_probability: float = 0.5
    in_group_probability: float = 0.8
    drift_fraction: float = 0.3
    deal_share: float = 0.1
    days: int = 14
    start_ms: int = DEFAULT_START_MS

    def __post_init__(self) -> None:
        if self.users < 1 or self.items < 2:
            raise ValueError("need at least 1 user and 2 items")
        if self.events < MIN_EVENTS_PER_USER * self.users:
            raise ValueError(
                f"need at least {MIN_EVENTS_PER_USER} events per user "
                f"({MIN_EVENTS_PER_USER * self.users} for {self.users} users), got {self.events}"
            )
        if not 1 <= self.group_count <= self.items:
            raise ValueError(f"groups must be between 1 and the number of items ({self.items})")
        if self.days < 1:
            raise ValueError("days must be at least 1")

    @property
    def group_count(self) -> int:
        return self.groups or max(2, self.items // 40)


@dataclass(frozen=True)
class _Catalog:
    popularity: np.ndarray  # normalised weight per item
    group_of: np.ndarray  # group index per item
    successor: np.ndarray  # the planted next item per item
    group_items: list[np.ndarray]
    group_cdf: list[np.ndarray]  # popularity CDF within each group
    group_choice: np.ndarray  # chance that a user's primary group is each group
    global_cdf: np.ndarray
    deals: np.ndarray  # per group, its promoted item on the deals surface


def generate(spec: SyntheticSpec) -> list[Event]:
    """All events of the stream, sorted by (timestamp, event_id)."""
    rng = np.random.default_rng(spec.seed)
    catalog = _catalog(spec, rng)
    counts = _events_per_user(spec, rng)
    events = [
        event
        for user, count in enumerate(counts)
        for event in _user_events(spec, catalog, rng, user, int(count))
    ]
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    return events


def in_user_blocks(events: Sequence[Event]) -> list[Event]:
    """The events as a warehouse dump of the same history orders them: user by user, the most
    active users first (``ORDER BY count DESC, user_id, ts``), each user's events in time order.

    The stream in this order is the one that tells a per-partition event-time rule from a
    per-user one: the heavy users' newest events come first, everyone else's oldest after.
    """
    counts = Counter(event.user_id for event in events)
    return sorted(events, key=lambda e: (-counts[e.user_id], e.user_id, e.timestamp))


def generate_items(spec: SyntheticSpec) -> list[Item]:
    """The stream's item catalog: each item's planted group is its category."""
    group_of = _catalog(spec, np.random.default_rng(spec.seed)).group_of
    return [
        Item(item_id(index), (f"group-{group:04d}",), created_at=spec.start_ms)
        for index, group in enumerate(group_of.tolist())
    ]


def deal_items(spec: SyntheticSpec) -> list[str]:
    """The promoted item of each group on the deals surface (signal 5), which a model that
    reads the request's context should rank first there."""
    return [item_id(i) for i in _catalog(spec, np.random.default_rng(spec.seed)).deals.tolist()]


def _catalog(spec: SyntheticSpec, rng: np.random.Generator) -> _Catalog:
    ranks = rng.permutation(spec.items)
    popularity = 1.0 / (ranks + 1.0)
    popularity /= popularity.sum()
    group_of = rng.permutation(spec.items) % spec.group_count
    successor = np.empty(spec.items, dtype=np.int64)
    group_items, group_cdf = [], []
    for group in range(spec.group_count):
        members = rng.permutation(np.flatnonzero(group_of == group))
        successor[members] = np.roll(members, -1)
        group_items.append(members)
        group_cdf.append(np.cumsum(popularity[members]) / popularity[members].sum())
    group_weight = np.array([popularity[members].sum() for members in group_items]) ** 0.5
    return _Catalog(
        popularity,
        group_of,
        successor,
        group_items,
        group_cdf,
        group_weight / group_weight.sum(),
        np.cumsum(popularity),
        np.array([members[0] for members in group_items]),  # a random member
    )


def _events_per_user(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    activity = rng.lognormal(0.0, 0.8, spec.users)
    extra = spec.events - MIN_EVENTS_PER_USER * spec.users
    return MIN_EVENTS_PER_USER + rng.multinomial(extra, activity / activity.sum())


def _user_events(
    spec: SyntheticSpec, catalog: _Catalog, rng: np.random.Generator, user: int, count: int
) -> Iterator[Event]:
    primary, secondary = rng.choice(spec.group_count, size=2, p=catalog.group_choice)
    drift_at = int(count * rng.uniform(0.4, 0.8)) if rng.random() < spec.drift_fraction else count
    drifted = (primary + 1 + rng.integers(max(spec.group_count - 1, 1))) % spec.group_count
    times = _timestamps(spec, rng, count)
    kinds = rng.choice(len(EVENT_TYPES), size=count, p=_EVENT_TYPE_WEIGHTS)
    device = _DEVICES[rng.integers(len(_DEVICES))]
    draws = rng.random((count, 3))
    # Its own generator: the other signals draw as they did before the deals surface existed.
    on_deals_draws = np.random.default_rng([spec.seed, _DEALS_STREAM, user]).random(count)
    previous = -1
    for n in range(count):
        taste = drifted if n >= drift_at else primary
        follow, in_group, which = draws[n]
        on_deals = on_deals_draws[n] < spec.deal_share
        if on_deals:
            item = int(catalog.deals[taste])
        elif previous >= 0 and follow < spec.follow_probability:
            item = int(catalog.successor[previous])
        elif in_group < spec.in_group_probability:
            group = taste if which < 0.8 else secondary
            cdf = catalog.group_cdf[group]
            pick = min(int(np.searchsorted(cdf, rng.random())), len(cdf) - 1)
            item = int(catalog.group_items[group][pick])
        else:
            pick = int(np.searchsorted(catalog.global_cdf, rng.random()))
            item = min(pick, spec.items - 1)
        previous = item
        yield Event(
            event_id=str(uuid.UUID(bytes=rng.bytes(16), version=4)),
            user_id=user_id(user),
            item_id=item_id(item),
            event_type=EVENT_TYPES[kinds[n]],
            timestamp=int(times[n]),
            context={"device": device, "surface": "deals" if on_deals else "home"},
        )


def _timestamps(spec: SyntheticSpec, rng: np.random.Generator, count: int) -> np.ndarray:
    """Strictly increasing event times inside the spec's window."""
    span = spec.days * DAY_MS
    start = rng.uniform(0, 0.3 * span)
    gaps = rng.exponential(1.0, count)
    offsets = start + np.cumsum(gaps) / gaps.sum() * (span - start - count)
    return spec.start_ms + offsets.astype(np.int64) + np.arange(count)


def user_id(index: int) -> str:
    return f"u-{index:06d}"


def item_id(index: int) -> str:
    return f"i-{index:06d}"
