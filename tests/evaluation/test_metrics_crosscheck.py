"""The ranking metrics against independent implementations: scikit-learn where it has the metric, brute force
over the ranking otherwise, on random cases (full rankings, binary relevance, no ties)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from zsrec.evaluation.metrics import (
    auc,
    hit_rate_at_k,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    relevant_ranks,
    user_metrics,
)

CASES = 300


def random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ranked item ids, relevant item ids, 0-based ranks of the relevant ones) for one user."""
    n = int(rng.integers(2, 60))
    ranked = rng.permutation(n)
    relevant = rng.choice(n, size=int(rng.integers(1, min(n, 8) + 1)), replace=False)
    return ranked, relevant, np.sort(relevant_ranks(ranked, relevant))


def test_ndcg_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(CASES):
        ranked, relevant, ranks = random_case(rng)
        n = len(ranked)
        y_true = np.isin(np.arange(n), relevant).astype(float)[None, :]
        y_score = np.empty(n)
        y_score[ranked] = np.arange(n, 0, -1)  # the first-ranked item scores highest, no ties
        for k in (1, 3, 10, n):
            assert ndcg_at_k(ranks, k) == pytest.approx(ndcg_score(y_true, y_score[None, :], k=k), abs=1e-12)


def test_one_relevant_item_ndcg_matches_scikit_learn_at_every_rank() -> None:
    n = 30
    for position in range(n):
        y_true = np.zeros((1, n))
        y_true[0, position] = 1.0
        y_score = np.arange(n, 0, -1, dtype=float)[None, :]
        for k in (1, 5, 10, n):
            assert ndcg_at_k(np.array([position]), k) == pytest.approx(ndcg_score(y_true, y_score, k=k), abs=1e-12)


def brute_force(ranked: np.ndarray, relevant: np.ndarray, k: int) -> dict[str, float]:
    """The metrics read straight off the ranked list, pair by pair."""
    relevant_set = {int(i) for i in relevant}
    is_relevant = [int(i) in relevant_set for i in ranked]
    first = is_relevant.index(True)
    pairs = [(a, b) for a in range(len(ranked)) for b in range(len(ranked)) if is_relevant[a] and not is_relevant[b]]
    return {
        "recall": sum(is_relevant[:k]) / len(relevant_set),
        "hr": float(any(is_relevant[:k])),
        "rr": 1.0 / (first + 1),
        "auc": sum(a < b for a, b in pairs) / len(pairs) if pairs else float("nan"),
    }


def test_recall_hit_rate_mrr_and_auc_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    for _ in range(CASES):
        ranked, relevant, ranks = random_case(rng)
        n = len(ranked)
        k = int(rng.integers(1, n + 1))
        expected = brute_force(ranked, relevant, k)
        assert recall_at_k(ranks, k) == pytest.approx(expected["recall"])
        assert hit_rate_at_k(ranks, k) == expected["hr"]
        assert reciprocal_rank(ranks) == pytest.approx(expected["rr"])
        if np.isnan(expected["auc"]):
            assert np.isnan(auc(ranks, n))
            continue
        assert auc(ranks, n) == pytest.approx(expected["auc"])
        y_score = np.empty(n)
        y_score[ranked] = np.arange(n, 0, -1)
        assert auc(ranks, n) == pytest.approx(roc_auc_score(np.isin(np.arange(n), relevant), y_score))


def test_user_metrics_equal_the_one_user_functions_on_random_users() -> None:
    rng = np.random.default_rng(2)
    cases = [random_case(rng) for _ in range(100)]
    ranks = [c[2] for c in cases]
    n_candidates = np.array([len(c[0]) for c in cases])
    n_relevant = np.array([len(r) + int(rng.integers(0, 3)) for r in ranks])  # some relevant items not in the pool
    out = user_metrics(ranks, n_candidates, ks=[1, 5, 20], n_relevant=n_relevant)
    for u, (r, n, n_rel) in enumerate(zip(ranks, n_candidates, n_relevant, strict=True)):
        for k in (1, 5, 20):
            assert out[f"ndcg@{k}"][u] == pytest.approx(ndcg_at_k(r, k, n_relevant=int(n_rel)))
            assert out[f"recall@{k}"][u] == pytest.approx(recall_at_k(r, k, n_relevant=int(n_rel)))
            assert out[f"hr@{k}"][u] == hit_rate_at_k(r, k)
        assert out["mrr"][u] == pytest.approx(reciprocal_rank(r))
        assert out["auc"][u] == pytest.approx(auc(r, int(n)), nan_ok=True)
