"""Ranks and NDCG of a score matrix on a split's new-item pool, without a model: what tuning and early
stopping compare. Below the models in the layering (only data and metrics), so trainers may use it."""

from __future__ import annotations

import numpy as np

from zsrec.data.splits import EvalSplit
from zsrec.evaluation.metrics import stacked_ndcg


def new_pool_ranks(scores: np.ndarray, split: EvalSplit, *, seed: int = 0, top: int | None = None) -> list[np.ndarray]:
    """The target ranks `target_ranks(PrecomputedScores(split.test_users, scores), split, "new", seed=seed)`
    gives, for a (n_test_users, n_new_items) score matrix, without ordering every candidate: a target's rank is
    the number of candidates that beat it (a higher score, or the same score and earlier in the same seeded
    tie-break order). With `top`, only ranks below `top` are exact; the others become distinct stand-ins
    top, top + 1, ... in target order (enough for metrics at cut-offs <= top). A partial partition per user
    then replaces the sort, which makes tuning loops that rank many weightings of one split cheap.
    """
    flat, lengths = _new_pool_flat_ranks(scores, split, seed, top)
    return np.split(flat, np.cumsum(lengths)[:-1])


def new_pool_ndcg(scores: np.ndarray, split: EvalSplit, *, seed: int = 0, k: int = 10) -> np.ndarray:
    """Per-user NDCG@k of a (n_test_users, n_new_items) score matrix on the split's new pool: what tuning and
    early stopping compare (the same figure `evaluate_model` reports, from `new_pool_ranks` cut at k)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    flat, lengths = _new_pool_flat_ranks(scores, split, seed, k)
    return stacked_ndcg(flat, np.repeat(np.arange(len(lengths)), lengths), lengths, k)


#: score-matrix entries compared at once when counting the candidates ahead of each target
_AHEAD_CHUNK_ELEMENTS = 1 << 16


def _new_pool_flat_ranks(
    scores: np.ndarray, split: EvalSplit, seed: int, top: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """`new_pool_ranks` of every test user's targets, concatenated in user then target order, and the per-user
    target counts. All users at once: one gather of the targets' scores, then the count of candidates ahead
    only for targets that can rank below `top`."""
    n_cand = len(split.new_items)
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if scores.shape != (len(split.test_users), n_cand):
        raise ValueError(f"scores have shape {scores.shape}, expected {(len(split.test_users), n_cand)}")
    if top is not None and top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    if not np.isfinite(scores).all():  # as target_ranks: nan ranks last, infinities become the extreme floats
        scores = np.nan_to_num(scores.astype(np.float64), nan=-np.inf)
    position = np.full(split.train.n_items, -1, dtype=np.int64)
    position[split.new_items] = np.arange(n_cand)
    tiebreak = tiebreak_order(seed, n_cand)
    lengths = np.array([len(t) for t in split.targets], dtype=np.int64)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = position[np.concatenate(split.targets)] if len(rows) else np.zeros(0, dtype=np.int64)
    mine = scores[rows, cols]
    if top is None or top >= n_cand:
        cap, near = n_cand, np.arange(len(rows))
    else:  # the top-th best score of each user: a target below it ranks at least `top`
        cap = top
        threshold = -np.partition(-scores, top - 1, axis=1)[:, top - 1]
        near = np.flatnonzero(mine >= threshold[rows])
    rank = np.full(len(rows), cap, dtype=np.int64)
    step = max(1, _AHEAD_CHUNK_ELEMENTS // max(n_cand, 1))
    for start in range(0, len(near), step):
        idx = near[start : start + step]
        s, m = scores[rows[idx]], mine[idx][:, None]
        ahead = (s > m) | ((s == m) & (tiebreak[None, :] < tiebreak[cols[idx]][:, None]))
        rank[idx] = np.minimum(ahead.sum(axis=1), cap)
    # targets at or beyond the cap: distinct stand-ins cap, cap + 1, ... in each user's target order (at most
    # n_cand - cap of them per user, so they stay below n_cand)
    beyond = rank >= cap
    running = np.cumsum(beyond)
    before_user = np.concatenate([[0], running])[np.cumsum(lengths) - lengths]
    rank[beyond] = cap + (running - before_user[rows] - 1)[beyond]
    return rank, lengths


def tiebreak_order(seed: int, n_candidates: int) -> np.ndarray:
    """The seeded random key that orders candidates of equal score (lower first)."""
    return np.random.default_rng(seed).random(n_candidates)
