"""Bootstrap intervals: users are resampled, differences are paired."""

import numpy as np
import pytest

from streamrec.training.intervals import Bootstrap, per_query_metrics


def _width(interval):
    return interval[1] - interval[0]


def test_an_interval_holds_the_mean_and_narrows_with_more_users():
    rng = np.random.default_rng(1)
    few_users, many_users = np.arange(100), np.arange(10_000)
    few = rng.random(100) < 0.2
    many = rng.random(10_000) < 0.2
    low, high = Bootstrap(few_users).interval(few.astype(float))
    assert low < few.mean() < high
    assert _width(Bootstrap(many_users).interval(many.astype(float))) < _width([low, high]) / 5


def test_users_are_resampled_whole_so_correlated_queries_widen_the_interval():
    # 50 users with 40 queries each, all hits or all misses: 50 observations, not 2000.
    users = np.repeat(np.arange(50), 40)
    hits = np.repeat(np.arange(50) % 2 == 0, 40).astype(float)
    by_user = _width(Bootstrap(users).interval(hits))
    as_if_independent = _width(Bootstrap(np.arange(2000)).interval(hits))
    assert by_user > 4 * as_if_independent


def test_a_paired_difference_of_a_model_with_itself_is_exactly_zero():
    users = np.repeat(np.arange(300), 3)
    values = np.random.default_rng(2).random(900)
    assert Bootstrap(users).interval(values - values) == [0.0, 0.0]


def test_no_queries_give_no_interval():
    assert Bootstrap(np.array([], str)).interval(np.array([])) is None


def test_per_query_metrics_average_to_the_reported_ones():
    ranks = np.array([0, 3, 9, 10, 50])
    values = per_query_metrics(ranks, [10])
    assert values["recall@10"].mean() == pytest.approx(0.6)
    assert values["ndcg@10"][0] == 1.0 and values["ndcg@10"][3] == 0.0
    assert values["mrr"][1] == pytest.approx(0.25)
