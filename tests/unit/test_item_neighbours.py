"""Item neighbour lists: the contract's checks, the fit's positive top lists, and the evaluation
scoring them as serving sums them."""

import numpy as np
import pytest
from scipy import sparse

from streamrec.infra.contracts.item_neighbours import ItemNeighbours, NeighbourBoost
from streamrec.training.baselines import item_to_item
from streamrec.training.neighbour_lists import fit_item_neighbours, neighbour_boosts
from streamrec.training.queries import Queries


def _lists(indptr, indices, weights):
    return ItemNeighbours(
        np.array(indptr, np.int64), np.array(indices, np.int32), np.array(weights, np.float32)
    )


@pytest.mark.parametrize(
    ("indptr", "indices", "weights", "message"),
    [
        ([0, 1], [0, 1], [1.0, 1.0], "delimit"),
        ([0, 1, 1], [5], [1.0], "outside"),
        ([0, 1, 1], [1], [0.0], "positive"),
        ([0, 1, 1], [1], [1.0, 2.0], "differ"),
        ([0, 2, 1, 2], [1, 0], [1.0, 1.0], "decreases"),
    ],
)
def test_malformed_lists_are_refused_naming_the_fault(indptr, indices, weights, message):
    with pytest.raises(ValueError, match=message):
        _lists(indptr, indices, weights)


def test_a_weight_or_sizes_out_of_range_are_refused():
    with pytest.raises(ValueError, match="weight"):
        NeighbourBoost(50, 100, -1.0)
    with pytest.raises(ValueError, match="history and per_item"):
        NeighbourBoost(0, 100, 1.0)
    assert NeighbourBoost.from_metadata({}) is None
    assert NeighbourBoost.from_metadata({"item_neighbours": {"history": 5, "per_item": 9,
                                                              "weight": 0.0}}) is None  # fmt: skip
    boost = NeighbourBoost(5, 9, 0.5)
    assert NeighbourBoost.from_metadata({"item_neighbours": boost.to_metadata()}) == boost


def test_the_lists_of_several_items_sum_and_survive_a_round_trip(tmp_path):
    lists = _lists([0, 2, 3, 3], [1, 2, 2], [1.0, 0.5, 2.0])
    rows, values = lists.of(np.array([0, 1, 7]))  # 7: beyond the lists, ignored
    assert rows.tolist() == [1, 2] and values.tolist() == [1.0, 2.5]
    lists.save(tmp_path / "n.npz")
    again = ItemNeighbours.load(tmp_path / "n.npz")
    assert again.of(np.array([0]))[1].tolist() == [1.0, 0.5]
    assert lists.of(np.array([2]))[0].size == 0


def _interactions(seed, users=60, items=25):
    rng = np.random.default_rng(seed)
    pairs = [(f"u{u}", i) for u in range(users) for i in rng.choice(items, 6, replace=False)]
    return [u for u, _ in pairs], np.array([i for _, i in pairs]), items


def _queries(history_index):
    n, h = history_index.shape
    return Queries(
        user_ids=np.array([f"q{i}" for i in range(n)]),
        histories=np.full((n, h), "x"),
        history_index=history_index,
        targets=np.zeros(n, np.int64),
        timestamps=np.zeros(n, np.int64),
        history_times=np.zeros((n, h), np.int64),
        history_types=np.full((n, h), ""),
        contexts=np.array([""] * n, dtype=object),
    )


def test_fitted_lists_are_the_positive_part_of_ease_scored_as_the_baseline_scores():
    users, items, n = _interactions(1)
    lists = fit_item_neighbours(users, items, n, per_item=n)
    assert np.all(lists.weights > 0)
    ease = item_to_item(users, items, n).weights
    history = np.array([[3, 4, 3, -1], [0, -1, -1, -1]])
    expected = np.maximum(ease, 0)[[3, 4]].sum(0), np.maximum(ease, 0)[0]
    scored = neighbour_boosts(lists, NeighbourBoost(3, n, 2.0))(_queries(history), slice(0, 2))
    assert scored == pytest.approx(2 * np.stack(expected), abs=1e-5)
    short = fit_item_neighbours(users, items, n, per_item=3)
    assert np.diff(short.indptr).max() <= 3
    dense = sparse.csr_matrix((short.weights, short.indices, short.indptr), shape=(n, n)).toarray()
    for row in range(n):  # each kept list holds that row's largest positive weights
        kept = dense[row][dense[row] > 0]
        assert sorted(kept) == pytest.approx(sorted(np.maximum(ease[row], 0))[-len(kept) :])


def test_a_history_read_in_another_catalog_scores_the_same_items():
    users, items, n = _interactions(2)
    lists = fit_item_neighbours(users, items, n, per_item=100)
    boost = NeighbourBoost(2, 100, 1.0)
    own = neighbour_boosts(lists, boost)(_queries(np.array([[3, 7]])), slice(0, 1))[0]
    # The evaluation's catalog: the version's items reversed, plus one it does not know.
    columns = np.arange(n)[::-1] + 1
    moved = neighbour_boosts(lists, boost, columns, n + 3)(
        _queries(np.array([[columns[3], columns[7]]])), slice(0, 1)
    )[0]
    assert moved.shape == (n + 3,) and moved[[0, n + 1, n + 2]].tolist() == [0, 0, 0]
    assert moved[columns] == pytest.approx(own)


def test_a_weight_is_chosen_only_where_the_lists_predict_the_next_item():
    from streamrec.training.boost_choice import ValidationScores, choose_neighbours

    items = np.eye(13, dtype=np.float32)
    lists = _lists([0, 1, *[1] * 12], [1], [1.0])  # item 0 goes with item 1
    encode = lambda queries: np.tile(items[2], (len(queries), 1))  # noqa: E731 -- points at 2
    queries = _queries(np.zeros((6, 1), np.int64))  # each has just bought item 0
    predicted = ValidationScores(queries, encode, items)  # ... and buys 1 next
    predicted.queries.targets[:] = 1
    # Without a boost 1 ties with 11 other items at 0 and misses the top 10; any boost lifts it.
    chosen = choose_neighbours(lists, 50, 0.1, predicted, None, True, per_item=100)
    assert chosen.recalls[0.0] == 0.0 and chosen.recalls[2.5] == 1.0
    assert chosen.boost == NeighbourBoost(50, 100, 0.25)  # the least of the best, times T
    unpredicted = ValidationScores(_queries(np.zeros((6, 1), np.int64)), encode, items)
    unpredicted.queries.targets[:] = 2  # what the towers already rank first
    unchosen = choose_neighbours(lists, 50, 0.1, unpredicted, None, True, per_item=100)
    assert unchosen.boost.weight == 0.0 and unchosen.describe()["weight"] == 0.0
