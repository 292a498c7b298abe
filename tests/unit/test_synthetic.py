from collections import Counter, defaultdict

import numpy as np
import pytest

from streamrec.infra.contracts.events import event_from_dict
from streamrec.ingest.synthetic import (
    MIN_EVENTS_PER_USER,
    SyntheticSpec,
    _catalog,
    deal_items,
    generate,
    generate_items,
    in_user_blocks,
)

SPEC = SyntheticSpec(users=200, items=400, events=8000, seed=3)


@pytest.fixture(scope="module")
def events():
    return generate(SPEC)


def test_same_seed_same_stream_and_other_seed_other_stream(events):
    assert generate(SPEC) == events
    assert generate(SyntheticSpec(users=200, items=400, events=8000, seed=4)) != events


def test_exact_event_count_every_user_present_and_valid_events(events):
    assert len(events) == SPEC.events
    per_user = Counter(e.user_id for e in events)
    assert len(per_user) == SPEC.users
    assert min(per_user.values()) >= MIN_EVENTS_PER_USER
    assert len({e.event_id for e in events}) == len(events)
    for event in events[:500]:
        assert event_from_dict(event.to_dict()) == event


def test_stream_is_time_ordered_and_each_user_strictly_increasing(events):
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    last: dict[str, int] = {}
    for event in events:
        assert event.timestamp > last.get(event.user_id, 0)
        last[event.user_id] = event.timestamp


def test_planted_transitions_are_followed_at_the_configured_rate(events):
    catalog = _catalog(SPEC, np.random.default_rng(SPEC.seed))
    previous: dict[str, str] = {}
    follows = total = 0
    for event in events:
        if event.user_id in previous and event.context["surface"] == "home":
            total += 1
            follows += (
                event.item_id == f"i-{catalog.successor[int(previous[event.user_id][2:])]:06d}"
            )
        previous[event.user_id] = event.item_id
    assert 0.45 < follows / total < 0.6  # follow_probability 0.5 plus chance re-picks


def test_deals_requests_pick_promoted_items_whatever_the_users_taste(events):
    deals = deal_items(SPEC)
    assert len(deals) == SPEC.group_count  # one per group
    on_deals = [e for e in events if e.context["surface"] == "deals"]
    assert 0.08 < len(on_deals) / len(events) < 0.12  # deal_share 0.1
    assert {e.item_id for e in on_deals} <= set(deals)
    home = [e for e in events if e.context["surface"] == "home"]
    assert sum(e.item_id in deals for e in home) / len(home) < 0.1


def test_popularity_is_skewed(events):
    counts = Counter(e.item_id for e in events)
    top_share = sum(c for _, c in counts.most_common(10)) / len(events)
    assert top_share > 5 * 10 / SPEC.items  # far above a uniform catalog's share


def test_user_tastes_concentrate_on_few_groups(events):
    catalog = _catalog(SPEC, np.random.default_rng(SPEC.seed))
    groups = defaultdict(Counter)
    for event in events:
        groups[event.user_id][catalog.group_of[int(event.item_id[2:])]] += 1
    shares = [max(c.values()) / sum(c.values()) for c in groups.values() if sum(c.values()) >= 20]
    assert np.mean(shares) > 3 / SPEC.group_count


def test_the_item_catalog_names_each_item_s_planted_group_as_its_category(events):
    items = generate_items(SPEC)
    assert [item.item_id for item in items] == [f"i-{n:06d}" for n in range(SPEC.items)]
    category = {item.item_id: item.categories[0] for item in items}
    assert len(set(category.values())) == SPEC.group_count
    groups = defaultdict(Counter)
    for event in events:
        groups[event.user_id][category[event.item_id]] += 1
    shares = [max(c.values()) / sum(c.values()) for c in groups.values() if sum(c.values()) >= 20]
    assert np.mean(shares) > 3 / SPEC.group_count  # the categories are the tastes' groups


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 10, "items": 5, "events": 20}, "at least 3 events per user"),
        ({"users": 0, "items": 5, "events": 20}, "at least 1 user"),
        ({"users": 1, "items": 5, "events": 20, "groups": 9}, "groups must be between"),
    ],
)
def test_impossible_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticSpec(**kwargs)


def test_user_blocks_hold_each_user_once_heaviest_first_in_time_order(events):
    blocks = in_user_blocks(events)
    assert sorted(blocks, key=lambda e: e.event_id) == sorted(events, key=lambda e: e.event_id)
    users = [e.user_id for e in blocks]
    starts = [n for n in range(len(users)) if n == 0 or users[n] != users[n - 1]]
    order = [users[n] for n in starts]
    assert len(order) == len(set(order)), "a user's events are one block"
    counts = Counter(users)
    assert [counts[u] for u in order] == sorted(counts.values(), reverse=True)
    for start, end in zip(starts, [*starts[1:], len(blocks)], strict=True):
        times = [e.timestamp for e in blocks[start:end]]
        assert times == sorted(times)
