import numpy as np

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
