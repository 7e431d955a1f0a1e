"""Ranking metrics: hand-computed cases, a brute-force cross-check of the batch path, and input checks."""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable

import numpy as np
import pytest

from zsrec.evaluation import metrics
from zsrec.evaluation.metrics import (
    auc,
    bootstrap_ci,
    catalog_coverage,
    hit_rate_at_k,
    mean_over_users,
    ndcg_at_k,
    per_group_mean,
    recall_at_k,
    reciprocal_rank,
    relevant_ranks,
    user_metrics,
)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(metrics)
    assert result.attempted >= 10
    assert result.failed == 0


# -- relevant_ranks -------------------------------------------------------------------------------------
def test_relevant_ranks_finds_positions_and_ignores_absent_items() -> None:
    ranked = np.array([40, 10, 30, 20, 50])
    # 20 sits at position 3, 40 at 0; 99 is not in the pool
    np.testing.assert_array_equal(relevant_ranks(ranked, np.array([20, 99, 40])), [0, 3])
    assert relevant_ranks(ranked, np.array([99])).size == 0


def test_relevant_ranks_works_on_string_ids() -> None:
    ranked = np.array(["tent", "stove", "sleeping-bag"])
    np.testing.assert_array_equal(relevant_ranks(ranked, np.array(["sleeping-bag"])), [2])


def test_relevant_ranks_rejects_repeated_relevant_item() -> None:
    with pytest.raises(ValueError, match="ranked must list each item once, got item 7"):
        relevant_ranks(np.array([7, 3, 7]), np.array([7]))


def test_relevant_ranks_rejects_2d_input() -> None:
    with pytest.raises(ValueError, match=r"ranked must be 1-D, got shape \(1, 3\)"):
        relevant_ranks(np.array([[1, 2, 3]]), np.array([1]))
    with pytest.raises(ValueError, match="relevant must be 1-D"):
        relevant_ranks(np.array([1, 2, 3]), np.array([[1]]))


# -- one-user metrics, by hand ----------------------------------------------------------------------------
def test_recall_at_k_by_hand() -> None:
    # ranks [1, 4], k=2: only rank 1 is in the top 2 -> 1/2
    assert recall_at_k(np.array([1, 4]), k=2) == 0.5
    # k=5: both in -> 2/2
    assert recall_at_k(np.array([4, 1]), k=5) == 1.0
    # denominator is n_relevant, not min(n_relevant, k): 1 hit of 4 relevant with k=1 -> 1/4
    assert recall_at_k(np.array([0, 7]), k=1, n_relevant=4) == 0.25
    # relevant items exist but none reached the pool -> 0/3
    assert recall_at_k(np.array([], dtype=int), k=3, n_relevant=3) == 0.0


def test_ndcg_at_k_by_hand() -> None:
    # ranks [0, 3], k=5: DCG = 1/log2(2) + 1/log2(5); ideal puts 2 items at 0, 1: IDCG = 1 + 1/log2(3)
    expected = (1.0 + 1.0 / math.log2(5)) / (1.0 + 1.0 / math.log2(3))
    assert ndcg_at_k(np.array([0, 3]), k=5) == pytest.approx(expected, rel=1e-12)
    # k=3 cuts rank 3: DCG = 1; IDCG still over min(2, 3) = 2 positions
    assert ndcg_at_k(np.array([3, 0]), k=3) == pytest.approx(1.0 / (1.0 + 1.0 / math.log2(3)), rel=1e-12)
    # 5 relevant, k=2: IDCG over min(5, 2) = 2 positions, so ranks [0, 1] score a perfect 1
    assert ndcg_at_k(np.array([0, 1]), k=2, n_relevant=5) == pytest.approx(1.0)
    # one relevant item at rank 2: 1/log2(4) = 0.5
    assert ndcg_at_k(np.array([2]), k=10) == pytest.approx(0.5)


def test_hit_rate_and_reciprocal_rank_by_hand() -> None:
    assert hit_rate_at_k(np.array([9, 4]), k=5) == 1.0  # rank 4 < 5
    assert hit_rate_at_k(np.array([9, 5]), k=5) == 0.0
    assert hit_rate_at_k(np.array([], dtype=int), k=5) == 0.0
    assert reciprocal_rank(np.array([9, 4])) == 0.2  # best rank 4 -> 1/5
    assert reciprocal_rank(np.array([0])) == 1.0
    assert reciprocal_rank(np.array([], dtype=int)) == 0.0


def test_auc_matches_pairs_counted_by_hand() -> None:
    # 5 candidates, relevant at ranks 1 and 3, non-relevant at 0, 2, 4.
    # Pairs (relevant, non-relevant) ordered right when the relevant rank is smaller:
    #   rank 1 vs 0 no, vs 2 yes, vs 4 yes -> 2;  rank 3 vs 0 no, vs 2 no, vs 4 yes -> 1;  3 of 6 pairs
    assert auc(np.array([1, 3]), n_candidates=5) == 0.5
    # relevant at 0, 1 above everything -> 1.0; at the bottom 3, 4 -> 0.0
    assert auc(np.array([0, 1]), n_candidates=5) == 1.0
    assert auc(np.array([4, 3]), n_candidates=5) == 0.0


def test_auc_equals_brute_force_over_pairs() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(2, 30))
        ranks = rng.choice(n, size=int(rng.integers(1, n)), replace=False)
        negatives = np.setdiff1d(np.arange(n), ranks)
        right = sum(int(r < q) for r in ranks for q in negatives)
        assert auc(ranks, n) == pytest.approx(right / (ranks.size * negatives.size), rel=1e-12)


def test_undefined_metrics_are_nan() -> None:
    empty = np.array([], dtype=int)
    assert math.isnan(recall_at_k(empty, k=3))
    assert math.isnan(ndcg_at_k(empty, k=3))
    assert math.isnan(auc(empty, n_candidates=4))  # no relevant item
    assert math.isnan(auc(np.array([0, 1, 2]), n_candidates=3))  # no non-relevant item


# -- the batch path against brute force ----------------------------------------------------------------
def _brute_force(ranked: np.ndarray, relevant: set[int], n_relevant: int, ks: list[int]) -> dict[str, float]:
    """Metrics computed straight from a ranked list of ids, with no use of the rank representation."""
    gains = [1.0 if item in relevant else 0.0 for item in ranked]
    out: dict[str, float] = {}
    for k in ks:
        hits = sum(gains[:k])
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))
        idcg = sum(1.0 / math.log2(i + 2) for i in range(min(n_relevant, k)))
        out[f"ndcg@{k}"] = dcg / idcg if n_relevant else math.nan
        out[f"recall@{k}"] = hits / n_relevant if n_relevant else math.nan
        out[f"hr@{k}"] = float(hits > 0)
    first = next((i for i, g in enumerate(gains) if g), None)
    out["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
    pos = [i for i, g in enumerate(gains) if g]
    neg = [i for i, g in enumerate(gains) if not g]
    pairs = [p < q for p in pos for q in neg]
    out["auc"] = sum(pairs) / len(pairs) if pairs else math.nan
    return out


def test_user_metrics_matches_brute_force_on_random_rankings() -> None:
    rng = np.random.default_rng(0)
    ks = [1, 3, 10]
    ranks_per_user, n_candidates, n_relevant, expected = [], [], [], []
    for _ in range(300):
        n = int(rng.integers(1, 25))
        ranked = rng.permutation(1000)[:n]  # a full ranking of n item ids
        n_in_pool = int(rng.integers(0, n + 1))  # 0 (no relevant item) up to n (no non-relevant item)
        n_absent = int(rng.integers(0, 3))  # relevant items that did not reach the pool
        relevant = set(rng.choice(ranked, size=n_in_pool, replace=False).tolist())
        ranks_per_user.append(
            relevant_ranks(ranked, np.array(sorted(relevant) + [5000 + i for i in range(n_absent)]))
        )
        n_candidates.append(n)
        n_relevant.append(n_in_pool + n_absent)
        expected.append(_brute_force(ranked, relevant, n_in_pool + n_absent, ks))

    got = user_metrics(ranks_per_user, np.array(n_candidates), ks, n_relevant=np.array(n_relevant))

    assert set(got) == set(expected[0])
    for key, values in got.items():
        assert values.shape == (300,)
        np.testing.assert_allclose(values, [e[key] for e in expected], rtol=1e-12, err_msg=key)
    # both nan cases occur, so the comparison above covered them
    assert np.isnan(got["auc"]).any() and np.isnan(got["recall@1"]).any()


def test_user_metrics_equals_the_one_user_functions() -> None:
    ranks_per_user = [np.array([4, 0]), np.array([], dtype=int), np.array([2]), np.array([5, 6, 7])]
    got = user_metrics(ranks_per_user, n_candidates=8, ks=[2, 5])
    for u, ranks in enumerate(ranks_per_user):
        for k in (2, 5):
            np.testing.assert_equal(got[f"ndcg@{k}"][u], ndcg_at_k(ranks, k))
            np.testing.assert_equal(got[f"recall@{k}"][u], recall_at_k(ranks, k))
            assert got[f"hr@{k}"][u] == hit_rate_at_k(ranks, k)
        assert got["mrr"][u] == reciprocal_rank(ranks)
        np.testing.assert_equal(got["auc"][u], auc(ranks, 8))


def test_user_metrics_with_no_users_returns_empty_arrays() -> None:
    got = user_metrics([], n_candidates=10, ks=[5])
    assert set(got) == {"ndcg@5", "recall@5", "hr@5", "mrr", "auc"}
    assert all(v.shape == (0,) for v in got.values())


# -- averages and coverage ----------------------------------------------------------------------------
def test_mean_over_users_skips_undefined_values() -> None:
    assert mean_over_users(np.array([1.0, np.nan, 0.0, 0.5])) == 0.5  # (1 + 0 + 0.5) / 3
    assert math.isnan(mean_over_users(np.array([np.nan, np.nan])))


def test_per_group_mean_by_hand() -> None:
    values = np.array([1.0, 0.0, 0.5, np.nan, 0.25])
    groups = np.array(["tents", "bags", "tents", "bags", "stoves"])
    # tents: (1 + 0.5) / 2; bags: 0 (the nan is skipped); stoves: 0.25
    assert per_group_mean(values, groups) == {"bags": 0.0, "stoves": 0.25, "tents": 0.75}
    assert per_group_mean(np.array([2.0, 4.0]), np.array([7, 7])) == {"7": 3.0}


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_users() -> None:
    rng = np.random.default_rng(2)
    population = rng.random(20_000)
    small, large = population[:100], population
    low_s, high_s = bootstrap_ci(small)
    low_l, high_l = bootstrap_ci(large)
    assert low_s < small.mean() < high_s
    assert low_l < large.mean() < high_l
    # the width shrinks like 1/sqrt(n): 200x more users -> about 14x narrower
    assert (high_l - low_l) < (high_s - low_s) / 5
    # uniform(0, 1) has sd 1/sqrt(12); a 95% CI of the mean of 100 is about 2 * 1.96 * 0.0289 = 0.113 wide
    assert 0.08 < high_s - low_s < 0.15


def test_bootstrap_ci_is_deterministic_and_chunking_does_not_change_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = np.random.default_rng(4).random(50)
    first = bootstrap_ci(values, n_resamples=300, seed=7)
    assert first == bootstrap_ci(values, n_resamples=300, seed=7)
    assert first != bootstrap_ci(values, n_resamples=300, seed=8)
    # one resample per chunk draws the same random stream, so the interval is unchanged
    monkeypatch.setattr(metrics, "_BOOTSTRAP_CHUNK_ELEMENTS", 1)
    assert bootstrap_ci(values, n_resamples=300, seed=7) == pytest.approx(first, abs=0)


def test_bootstrap_ci_wider_for_higher_confidence() -> None:
    values = np.random.default_rng(5).random(200)
    low90, high90 = bootstrap_ci(values, confidence=0.90)
    low99, high99 = bootstrap_ci(values, confidence=0.99)
    assert low99 < low90 < high90 < high99


def test_catalog_coverage_by_hand() -> None:
    recommended = np.array([[0, 1, 2], [2, 3, 0]])
    assert catalog_coverage(recommended, n_items=8) == 0.5  # {0, 1, 2, 3} of 8
    assert catalog_coverage(np.zeros((0, 3), dtype=int), n_items=8) == 0.0


# -- input checks -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: recall_at_k(np.array([1]), k=0), "k must be an integer >= 1, got 0"),
        (lambda: ndcg_at_k(np.array([1]), k=2.5), "k must be an integer >= 1, got 2.5"),
        (lambda: hit_rate_at_k(np.array([1]), k=True), "k must be an integer >= 1, got True"),
        (lambda: recall_at_k(np.array([-1, 2]), k=3), "ranks must be >= 0, got -1"),
        (
            lambda: reciprocal_rank(np.array([1.0, 2.0])),
            "ranks must hold integer positions, got dtype float64",
        ),
        (lambda: ndcg_at_k(np.array([[1]]), k=3), r"ranks must be 1-D, got shape \(1, 1\)"),
        (lambda: recall_at_k(np.array([2, 2]), k=3), "ranks must be distinct .* got 2 twice"),
        (lambda: auc(np.array([0, 5]), n_candidates=5), "ranks must be < n_candidates=5, got 5"),
        (lambda: auc(np.array([0]), n_candidates=0), "n_candidates must be an integer >= 1, got 0"),
        (
            lambda: recall_at_k(np.array([0, 1]), k=3, n_relevant=1),
            r"n_relevant must be .*>= len\(ranks\)=2, got 1",
        ),
        (lambda: user_metrics([np.array([0])], 5, ks=[]), "ks must name at least one cut-off"),
        (lambda: user_metrics([np.array([0])], 5, ks=[0]), "ks item must be an integer >= 1, got 0"),
        (
            lambda: user_metrics([np.array([0]), np.array([5])], 5, ks=[1]),
            r"ranks_per_user\[1\] must lie in \[0, n_candidates=5\), got 5",
        ),
        (lambda: user_metrics([np.array([-2])], 5, ks=[1]), r"ranks_per_user\[0\] must lie in .* got -2"),
        (
            lambda: user_metrics([np.array([1]), np.array([3, 3])], 5, ks=[1]),
            r"ranks_per_user\[1\] must be distinct, got 3 twice",
        ),
        (
            lambda: user_metrics([np.array([0.5])], 5, ks=[1]),
            r"ranks_per_user\[0\] must be a 1-D integer array",
        ),
        (
            lambda: user_metrics([np.array([0])], np.array([5, 6]), ks=[1]),
            r"n_candidates must have one entry per user \(1\)",
        ),
        (lambda: user_metrics([np.array([0])], 0, ks=[1]), "n_candidates must be >= 1, got 0"),
        (
            lambda: user_metrics([np.array([0])], 5.0, ks=[1]),
            "n_candidates must be an int or a 1-D integer array",
        ),
        (
            lambda: user_metrics([np.array([0, 1])], 5, ks=[1], n_relevant=np.array([1])),
            r"n_relevant\[0\] must be >= len\(ranks_per_user\[0\]\)=2, got 1",
        ),
        (lambda: mean_over_users(np.array([])), "per_user_values is empty"),
        (lambda: mean_over_users(np.ones((2, 2))), r"per_user_values must be 1-D .* got shape \(2, 2\)"),
        (
            lambda: per_group_mean(np.ones(3), np.array(["a", "b"])),
            r"groups must have the shape of values \(3,\), got \(2,\)",
        ),
        (lambda: bootstrap_ci(np.array([])), "values is empty"),
        (lambda: bootstrap_ci(np.array([0.5, np.nan])), "values must not contain nan, got 1 nan entries"),
        (lambda: bootstrap_ci(np.ones(3), confidence=1.0), r"confidence must be in \(0, 1\), got 1.0"),
        (lambda: bootstrap_ci(np.ones(3), n_resamples=0), "n_resamples must be an integer >= 1, got 0"),
        (lambda: catalog_coverage(np.array([[0, 9]]), n_items=9), r"item indexes in \[0, n_items=9\), got 9"),
        (
            lambda: catalog_coverage(np.array([[-1, 2]]), n_items=9),
            r"item indexes in \[0, n_items=9\), got -1",
        ),
        (lambda: catalog_coverage(np.array([0, 1]), n_items=9), r"recommended must be 2-D \(n_users, k\)"),
        (lambda: catalog_coverage(np.array([[0]]), n_items=0), "n_items must be an integer >= 1, got 0"),
    ],
)
def test_bad_input_raises_value_error_naming_argument_and_value(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()
