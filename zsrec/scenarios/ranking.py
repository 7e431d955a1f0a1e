"""Ranks of the right answers in a score matrix, and the summary every scenario reports (plain numbers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zsrec.evaluation.metrics import bootstrap_ci, mean_over_users, user_metrics


def ranks_of_relevant(scores: np.ndarray, relevant: Sequence[np.ndarray], *, seed: int = 0) -> list[np.ndarray]:
    """0-based ranks (ascending) of each row's relevant columns when the row is sorted by score, best first.

    Ties are broken by one seeded random order of the columns, so a constant score ranks like random.

    >>> ranks_of_relevant(np.array([[0.1, 0.9, 0.5]]), [np.array([2])])[0].tolist()
    [1]
    """
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    if scores.ndim != 2 or len(relevant) != scores.shape[0]:
        raise ValueError(f"scores must be (n_rows, n_columns) with one relevant array per row, got {scores.shape}")
    tiebreak = np.random.default_rng(seed).random(scores.shape[1])
    order = np.lexsort((np.broadcast_to(tiebreak, scores.shape), -scores), axis=-1)
    rank_of = np.empty_like(order)
    np.put_along_axis(rank_of, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1)
    return [np.sort(rank_of[row, np.asarray(cols, dtype=np.int64)]) for row, cols in enumerate(relevant)]


def ranking_summary(
    ranks: Sequence[np.ndarray],
    n_candidates: int | np.ndarray,
    ks: Sequence[int] = (10, 50),
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Mean NDCG/Recall/HR@k, MRR and AUC over queries, plus a bootstrap 95% CI of the first NDCG@k."""
    per_query = user_metrics(ranks, n_candidates, ks)
    out = {name: mean_over_users(values) for name, values in per_query.items()}
    out["n_queries"] = float(len(ranks))
    if n_bootstrap:
        first = per_query[f"ndcg@{ks[0]}"]
        lo, hi = bootstrap_ci(first[~np.isnan(first)], n_resamples=n_bootstrap, seed=seed)
        out[f"ndcg@{ks[0]}_ci_low"], out[f"ndcg@{ks[0]}_ci_high"] = lo, hi
    return out
