import json

import pytest

from streamrec.infra.contracts.events import Event, InvalidEvent, event_from_dict, parse_event

VALID = {
    "event_id": "e1",
    "user_id": "u1",
    "item_id": "i1",
    "event_type": "click",
    "timestamp": 1_767_571_200_000,
    "context": {"device": "web"},
}


def test_valid_event_round_trips_through_json():
    event = parse_event(json.dumps(VALID))
    assert event == Event("e1", "u1", "i1", "click", 1_767_571_200_000, {"device": "web"})
    assert parse_event(event.to_json()) == event


def test_context_is_optional():
    record = {k: v for k, v in VALID.items() if k != "context"}
    assert event_from_dict(record).context == {}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"timestamp": None}, "timestamp must be an integer"),
        ({"timestamp": 1_767_571_200}, "looks like seconds"),
        ({"timestamp": 10}, "outside 2000-01-01"),
        ({"timestamp": True}, "timestamp must be an integer"),
        ({"timestamp": 1.5e12}, "timestamp must be an integer"),
        ({"event_type": "like"}, "event_type 'like' is not one of"),
        ({"user_id": ""}, "user_id must be a non-empty string"),
        ({"item_id": 7}, "item_id must be a non-empty string"),
        ({"event_id": "x" * 300}, "event_id is longer than 256"),
        ({"context": ["a"]}, "context must be an object"),
        ({"context": {"n": 1}}, r"context\['n'\] must be a string"),
        ({"context": {str(n): "v" for n in range(33)}}, "context has 33 entries; at most 32"),
        ({"context": {"": "v"}}, "keys must be non-empty"),
        ({"context": {"k": "v" * 257}}, "at most 256 characters"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_invalid_events_are_refused_with_a_reason(change, reason):
    with pytest.raises(InvalidEvent, match=reason):
        event_from_dict({**VALID, **change})


def test_missing_fields_are_all_named():
    with pytest.raises(InvalidEvent, match="missing field\\(s\\): user_id, timestamp"):
        event_from_dict({k: v for k, v in VALID.items() if k not in ("user_id", "timestamp")})


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]", b"null"])
def test_non_objects_and_garbage_are_refused(raw):
    with pytest.raises(InvalidEvent):
        parse_event(raw)
