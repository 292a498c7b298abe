from streamrec.infra.cli.demo import split_last_events
from streamrec.infra.contracts.events import Event


def _event(n, user, item, ts):
    return Event(f"e{n}", user, item, "view", ts)


def test_each_users_last_event_is_held_out():
    events = [
        _event(1, "u1", "a", 1),
        _event(2, "u2", "b", 2),
        _event(3, "u1", "c", 3),
        _event(4, "u2", "d", 4),
    ]
    train, held = split_last_events(events)
    assert [e.event_id for e in train] == ["e1", "e2"]
    assert [e.event_id for e in held] == ["e3", "e4"]
