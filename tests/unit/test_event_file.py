import pytest

from streamrec.infra.core.errors import StreamrecError
from streamrec.ingest.event_file import count_events, read_events, write_events
from streamrec.ingest.synthetic import SyntheticSpec, generate


def test_written_events_read_back_identically(tmp_path):
    events = generate(SyntheticSpec(users=5, items=10, events=30, seed=1))
    path = tmp_path / "events.jsonl"
    assert write_events(path, events) == 30
    assert list(read_events(path)) == events
    assert not (tmp_path / "events.jsonl.partial").exists()


def test_the_first_bad_line_is_named_with_its_reason(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = generate(SyntheticSpec(users=1, items=2, events=3, seed=1))[0].to_json()
    path.write_text(f'{good}\n\n{good[:-1]}, "extra": 1}}\n')
    with pytest.raises(StreamrecError, match=r"bad.jsonl line 3: unknown field\(s\): extra"):
        count_events(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(StreamrecError, match="cannot read event file"):
        count_events(tmp_path / "absent.jsonl")
