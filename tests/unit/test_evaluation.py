import numpy as np
import pytest

from streamrec.training.evaluation import (
    popularity_ranking,
    popularity_recall_at_k,
    ranks_in_lists,
    recall_at_k,
    target_ranks,
)


def test_ranks_are_exact_over_the_whole_catalog():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ranks = target_ranks(queries, items, np.array([0, 0, 2]))
    assert ranks.tolist() == [0, 2, 0]
    assert recall_at_k(ranks, 1) == 2 / 3


def test_ties_count_against_the_target_and_unknown_targets_rank_last():
    items = np.array([[1.0], [1.0], [1.0]])
    ranks = target_ranks(np.array([[1.0], [1.0]]), items, np.array([1, -1]))
    assert ranks.tolist() == [2, 3]


def test_ranks_in_served_lists_put_missing_targets_after_the_list():
    ranks = ranks_in_lists([["a", "b", "c"], ["a", "b", "c"], ["x"]], ["b", "z", "x"])
    assert ranks.tolist() == [1, 3, 0]
    assert recall_at_k(ranks, 2) == 2 / 3
    assert recall_at_k(np.array([], dtype=np.int64), 10) == 0.0


def test_popularity_ranking_is_deterministic_and_scored_by_hits():
    counts = {"b": 3, "a": 3, "c": 1}
    assert popularity_ranking(counts) == ["a", "b", "c"]
    assert popularity_recall_at_k(counts, ["a", "c", "b", "z"], 2) == 0.5


def test_metrics_from_ranks_and_top_lists():
    from streamrec.training.evaluation import Rankings, metrics

    rankings = Rankings(ranks=np.array([0, 1, 5]), top=np.array([[0, 1], [0, 2], [1, 0]]))
    found = metrics(rankings, [2], popularity_rank=np.array([0, 1, 2, 3]))
    assert found["recall@2"] == 2 / 3
    assert found["ndcg@2"] == pytest.approx((1 + 1 / np.log2(3)) / 3)
    assert found["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 6) / 3)
    assert found["coverage@2"] == 3 / 4  # items 0, 1, 2 of 4 were shown
    assert found["popularity_rank@2"] == pytest.approx((0 + 1 + 0 + 2 + 1 + 0) / 6)


def test_excluded_items_leave_the_ranking_and_an_excluded_target_is_a_miss():
    from streamrec.training.evaluation import rank_all

    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    rankings = rank_all(lambda rows: scores[rows], np.array([2, 0]), 2, exclude=[[0, 1], [0, -1]])
    # Query 0: items 0 and 1 are seen, so its target (2) ranks first. Query 1: its target (0)
    # was seen, and serving never shows a seen item: it ranks behind everything shown.
    assert rankings.ranks.tolist() == [0, 3]
    assert rankings.top[0].tolist()[0] == 2


def test_leave_last_out_keeps_each_users_latest_query():
    from streamrec.training.queries import Queries

    queries = Queries(
        user_ids=np.array(["b", "a", "b", "a"]),
        histories=np.array([["x"], ["y"], ["z"], [""]]),
        history_index=np.array([[0], [1], [2], [-1]]),
        targets=np.array([1, 2, 3, 4]),
        timestamps=np.array([5, 9, 7, 1]),
        history_times=np.array([[1], [2], [3], [-1]]),
        history_types=np.array([["view"], ["view"], ["click"], [""]]),
        contexts=np.array(["", "device=ios", "", "device=web"], object),
    )
    last = queries.last_per_user()
    assert last.user_ids.tolist() == ["a", "b"] and last.targets.tolist() == [2, 3]
    assert last.contexts.tolist() == ["device=ios", ""]
    assert queries.history_lengths().tolist() == [1, 1, 1, 0]


@pytest.mark.parametrize("items", [5, 25_000])
def test_item_to_item_baselines_recommend_what_was_bought_together(items):
    from streamrec.training.baselines import item_to_item
    from streamrec.training.queries import Queries

    # Item 1 always goes with item 0, item 3 with item 2; item 4 is bought alone, often.
    users = np.array(["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u5", "u6"])
    bought = np.array([0, 1, 0, 1, 2, 3, 4, 4, 4])
    model = item_to_item(users, bought, items)
    assert model.name == ("ease" if items <= 20_000 else "item_knn")
    queries = Queries(
        np.array(["q1", "q2"]),
        np.array([["a"], ["c"]]),
        np.array([[0], [2]]),
        np.array([1, 3]),
        np.array([1, 2]),
        np.array([[0], [0]]),
        np.array([["view"], ["view"]]),
        np.array(["", ""], object),
    )
    scores = model.scores(queries, slice(0, 2))
    assert scores.shape == (2, items)
    assert np.argmax(scores[0]) == 1 and np.argmax(scores[1]) == 3
