import numpy as np

from training.metrics import popularity_ranking, popularity_recall_at_k, recall_at_k, target_ranks


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


def test_popularity_ranking_is_deterministic_and_scored_by_hits():
    ranking = popularity_ranking({"b": 3, "a": 3, "c": 1})
    assert ranking == ["a", "b", "c"]
    assert popularity_recall_at_k(ranking, ["a", "c", "b", "z"], 2) == 0.5
