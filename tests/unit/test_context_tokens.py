"""Event context from the feature job's files to the query tower's inputs (feature spec 4):
written by both layouts, read back per event, hashed alike in training and at serving."""

import numpy as np
import pytest

from streamrec.features.example_files import StagedExampleWriter, example_records
from streamrec.features.examples import event_context_tokens
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.feature_spec import context_tokens
from streamrec.infra.core.config import load_config
from streamrec.infra.storage import open_offline_examples

T0 = 1_767_225_600_000
CONTEXTS = [{}, {"device": "ios"}, {"surface": "deals", "device": "web"}, {"a.b": "2", "a": "1"}]


def test_tokens_are_key_value_pairs_sorted_as_strings():
    assert context_tokens({"surface": "deals", "device": "web"}) == ("device=web", "surface=deals")
    assert context_tokens({"a": "1", "a.b": "2"}) == ("a.b=2", "a=1")
    assert context_tokens({}) == ()
    # The feature job's memoised form, keyed by the map's order: any order, the same tokens.
    assert event_context_tokens({"b": "2", "a": "1"}) == ("a=1", "b=2")
    assert event_context_tokens({"a": "1", "b": "2"}) == ("a=1", "b=2")
    assert event_context_tokens({}) == ()


@pytest.mark.parametrize("layout", spec.EXAMPLE_LAYOUTS)
def test_both_layouts_give_each_event_its_own_context_back(tmp_path, layout):
    from streamrec.training.data_window import load_window

    events = [
        Event(f"e{n}", f"u{n % 3}", f"i{n % 7}", "view", T0 + 60_000 * n, CONTEXTS[n % 4])
        for n in range(40)
    ]
    config = load_config(environ={"STREAMREC_OFFLINE_EXAMPLES_PATH": str(tmp_path)})
    writer = StagedExampleWriter(open_offline_examples(config), "b", part=0, layout=layout)
    for record in example_records(layout, events, {}, 5):
        writer.write(record)
    files = [_committed(f) for f in writer.close()]
    window = load_window(files, 5, holdout_fraction=0.25)
    expected = {e.event_id: "\n".join(context_tokens(e.context)) for e in events}
    found = dict(zip(window.events[spec.EVENT_ID], window.events[spec.CONTEXT_TOKENS], strict=True))
    assert {k: _text(v) for k, v in found.items()} == expected
    held = dict(
        zip(window.holdout[spec.EVENT_ID], window.holdout[spec.CONTEXT_TOKENS], strict=True)
    )
    assert len(held) == 10 and all(_text(v) == expected[k] for k, v in held.items())


def test_training_and_serving_hash_a_context_to_the_same_buckets():
    import tensorflow as tf

    from streamrec.training.request_context import MAX_TOKENS, hashed, token_ids

    ids = token_ids(np.array(["device=web\nsurface=deals", ""], object))
    as_read = token_ids(np.array([b"device=web\nsurface=deals"], object))  # as TF returns it
    assert ids.shape == (2, 2) and ids.dtype == np.int32  # as wide as the longest context
    assert (ids[1] == 0).all() and ids[0].tolist() == as_read[0].tolist()
    many = "\n".join(f"k{n}=v" for n in range(MAX_TOKENS + 3))
    assert token_ids(np.array([many, ""], object)).shape == (2, MAX_TOKENS)
    assert token_ids(np.array(["", ""], object)).shape == (2, 1)
    served = hashed(tf.constant([["device=web", "surface=deals", ""]])).numpy()[0]
    assert ids[0, :2].tolist() == served[:2].tolist() and served[2] == 0
    assert ids[0, 0] > 0 and ids[0, 0] != ids[0, 1]


def test_the_context_bag_adds_nothing_without_context_and_alike_from_ids_or_tokens():
    import tensorflow as tf

    from streamrec.training.request_context import RequestContext, hashed

    bag = RequestContext(4)
    tokens = tf.constant([["device=web", "surface=deals"], ["", ""]])
    from_tokens = bag(tokens).numpy()
    from_ids = bag(hashed(tokens)).numpy()
    assert np.allclose(from_tokens, from_ids) and (from_tokens[1] == 0).all()
    assert bag(tf.zeros([2, 0], tf.string)).numpy().tolist() == [[0.0] * 4] * 2


def _committed(staged):
    import dataclasses

    return dataclasses.replace(staged.example_file("batch-00000000"), path=staged.staged)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
