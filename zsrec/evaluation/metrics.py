"""Ranking metrics as pure functions on arrays (after scikit-learn's `metrics/_ranking.py`).

Every candidate in a pool is ranked (full ranking, never sampled negatives). One user's outcome is
`ranks`: the 0-based positions of that user's relevant items in the ranking of `n_candidates`
candidates, so rank 0 is the top. `relevant_ranks` builds it from a ranking; the per-user metrics read it;
`user_metrics` computes all of them for many users at once; `mean_over_users`, `per_group_mean` and
`bootstrap_ci` average the per-user values.

Undefined values are `nan` (recall and NDCG of a user with no relevant item, AUC of a user with no relevant
or no non-relevant candidate); the averages skip them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "auc",
    "bootstrap_ci",
    "paired_bootstrap_ci",
    "catalog_coverage",
    "hit_rate_at_k",
    "mean_over_users",
    "ndcg_at_k",
    "per_group_mean",
    "recall_at_k",
    "reciprocal_rank",
    "relevant_ranks",
    "user_metrics",
]

# Largest index matrix bootstrap_ci draws at once (elements), to bound memory.
_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000


# -- input checks ---------------------------------------------------------------------------------------
def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_ranks(ranks: np.ndarray, n_candidates: int | None = None, name: str = "ranks") -> np.ndarray:
    """Validated ranks as a sorted int64 copy (no metric depends on their order)."""
    arr = np.asarray(ranks)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer positions, got dtype {arr.dtype}")
    arr = np.sort(arr.astype(np.int64))
    if arr[0] < 0:
        raise ValueError(f"{name} must be >= 0, got {arr[0]}")
    if n_candidates is not None and arr[-1] >= n_candidates:
        raise ValueError(f"{name} must be < n_candidates={n_candidates}, got {arr[-1]}")
    repeated = arr[1:][arr[1:] == arr[:-1]]
    if repeated.size:
        raise ValueError(f"{name} must be distinct (one position per relevant item), got {repeated[0]} twice")
    return arr


def _check_n_relevant(n_relevant: int | None, n_ranks: int) -> int:
    if n_relevant is None:
        return n_ranks
    if isinstance(n_relevant, bool) or not isinstance(n_relevant, int | np.integer) or n_relevant < n_ranks:
        raise ValueError(f"n_relevant must be an integer >= len(ranks)={n_ranks}, got {n_relevant!r}")
    return int(n_relevant)


def _check_at_k(ranks: np.ndarray, k: int, n_relevant: int | None) -> tuple[np.ndarray, int, int]:
    """The checked arguments of a one-user metric at `k`: (ranks, k, n_relevant defaulting to len(ranks))."""
    k = _check_positive_int(k, "k")
    ranks = _check_ranks(ranks)
    return ranks, k, _check_n_relevant(n_relevant, ranks.size)


def _check_values(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per user), got shape {arr.shape}")
    return arr


# -- one user -------------------------------------------------------------------------------------------
def relevant_ranks(ranked: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Positions in a full ranking of the relevant items, ascending.

    Args:
        ranked: (n_candidates,) item ids, best first; each id at most once.
        relevant: (n_relevant,) the user's relevant item ids; ids absent from `ranked` are ignored.

    Returns:
        (n_found,) int64 ranks. Repeats of relevant ids in `ranked` raise; repeats of other ids are not
        checked (that would sort the whole pool for every user).

    >>> relevant_ranks(np.array([7, 3, 9, 1, 4]), np.array([1, 7, 8]))
    array([0, 3])
    """
    ranked, relevant = np.asarray(ranked), np.asarray(relevant)
    if ranked.ndim != 1:
        raise ValueError(f"ranked must be 1-D, got shape {ranked.shape}")
    if relevant.ndim != 1:
        raise ValueError(f"relevant must be 1-D, got shape {relevant.shape}")
    positions = np.flatnonzero(np.isin(ranked, relevant)).astype(np.int64)
    found = np.sort(ranked[positions])
    repeated = found[1:][found[1:] == found[:-1]]
    if repeated.size:
        raise ValueError(f"ranked must list each item once, got item {repeated[0].item()!r} more than once")
    return positions


def recall_at_k(ranks: np.ndarray, k: int, n_relevant: int | None = None) -> float:
    """Share of the user's relevant items ranked in the top `k`.

    The denominator is `n_relevant`, not `min(n_relevant, k)`: a user with more relevant items than `k`
    cannot reach 1.0. nan when the user has no relevant item.

    Args:
        ranks: (n_found,) positions of the relevant items.
        n_relevant: all relevant items, including any missing from the pool; defaults to `len(ranks)`.

    >>> recall_at_k(np.array([1, 4]), k=2)  # 1 of 2 in the top 2
    0.5
    >>> recall_at_k(np.array([1, 4]), k=2, n_relevant=4)
    0.25
    """
    ranks, k, n_relevant = _check_at_k(ranks, k, n_relevant)
    if n_relevant == 0:
        return float("nan")
    return float(np.count_nonzero(ranks < k) / n_relevant)


def ndcg_at_k(ranks: np.ndarray, k: int, n_relevant: int | None = None) -> float:
    """Normalised discounted cumulative gain at `k` with binary relevance.

    DCG sums `1 / log2(rank + 2)` over relevant items with rank < k; the ideal DCG puts
    `min(n_relevant, k)` relevant items at the top. nan when the user has no relevant item.

    >>> round(ndcg_at_k(np.array([0]), k=10), 6)
    1.0
    >>> round(ndcg_at_k(np.array([1]), k=10), 6)  # 1/log2(3)
    0.63093
    """
    ranks, k, n_relevant = _check_at_k(ranks, k, n_relevant)
    if n_relevant == 0:
        return float("nan")
    hits = ranks[ranks < k]
    dcg = np.sum(1.0 / np.log2(hits + 2.0))
    idcg = np.sum(1.0 / np.log2(np.arange(min(n_relevant, k)) + 2.0))
    return float(dcg / idcg)


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    """1.0 if any relevant item is ranked in the top `k`, else 0.0 (also for a user with none).

    >>> hit_rate_at_k(np.array([3, 8]), k=4), hit_rate_at_k(np.array([3, 8]), k=3)
    (1.0, 0.0)
    """
    k = _check_positive_int(k, "k")
    ranks = _check_ranks(ranks)
    return float(ranks.size > 0 and ranks[0] < k)


def reciprocal_rank(ranks: np.ndarray) -> float:
    """1 / (1 + rank of the best-ranked relevant item); 0.0 for a user with none. Its mean is MRR.

    >>> reciprocal_rank(np.array([5, 3]))
    0.25
    """
    ranks = _check_ranks(ranks)
    return float(1.0 / (ranks[0] + 1)) if ranks.size else 0.0


def auc(ranks: np.ndarray, n_candidates: int) -> float:
    """Share of (relevant, non-relevant) pairs where the relevant item is ranked above, in O(R log R).

    With the ranks sorted, the i-th relevant item (0-based) at rank r has `r - i` non-relevant items above
    it, hence `n_negative - (r - i)` below. 1.0 means every relevant item precedes every non-relevant one;
    nan when there is no relevant or no non-relevant candidate.

    Args:
        ranks: (R,) positions of the relevant items among `n_candidates`.

    >>> auc(np.array([0, 2]), n_candidates=4)  # negatives at 1, 3: pairs (0,1) (0,3) (2,3) right, (2,1) wrong
    0.75
    """
    n_candidates = _check_positive_int(n_candidates, "n_candidates")
    ranks = _check_ranks(ranks, n_candidates)
    n_negative = n_candidates - ranks.size
    if ranks.size == 0 or n_negative == 0:
        return float("nan")
    negatives_above = ranks - np.arange(ranks.size)
    return float(np.sum(n_negative - negatives_above) / (ranks.size * n_negative))


# -- many users -----------------------------------------------------------------------------------------
def _stack_ranks(
    ranks_per_user: Sequence[np.ndarray], n_candidates: np.ndarray | int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated ranks of all users concatenated, ascending within each user.

    Returns (flat, user, lengths, n_cand): (total,) ranks, (total,) owning user, (n_users,) ranks per
    user, (n_users,) pool size per user; all int64.
    """
    n_users = len(ranks_per_user)
    arrays = []
    for u, r in enumerate(ranks_per_user):
        arr = np.asarray(r)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(
                f"ranks_per_user[{u}] must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}"
            )
        arrays.append(arr.astype(np.int64))
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    user = np.repeat(np.arange(n_users), lengths)

    n_cand = np.asarray(n_candidates)
    if not np.issubdtype(n_cand.dtype, np.integer) or n_cand.ndim not in (0, 1):
        raise ValueError(f"n_candidates must be an int or a 1-D integer array, got {n_candidates!r}")
    n_cand = np.broadcast_to(n_cand, (n_users,)) if n_cand.ndim == 0 else n_cand
    if n_cand.shape != (n_users,):
        raise ValueError(f"n_candidates must have one entry per user ({n_users}), got shape {n_cand.shape}")
    n_cand = n_cand.astype(np.int64)
    if n_cand.size and n_cand.min() < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_cand.min()}")
    bad = np.flatnonzero((flat < 0) | (flat >= n_cand[user]))
    if bad.size:
        u = user[bad[0]]
        raise ValueError(f"ranks_per_user[{u}] must lie in [0, n_candidates={n_cand[u]}), got {flat[bad[0]]}")
    flat = flat[np.lexsort((flat, user))]  # user is already non-decreasing, so it stays aligned
    repeated = np.flatnonzero((flat[1:] == flat[:-1]) & (user[1:] == user[:-1]))
    if repeated.size:
        u = user[repeated[0]]
        raise ValueError(f"ranks_per_user[{u}] must be distinct, got {flat[repeated[0]]} twice")
    return flat, user, lengths, n_cand


def _check_n_relevant_per_user(n_relevant: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    n_rel = np.asarray(n_relevant)
    if n_rel.shape != lengths.shape or not np.issubdtype(n_rel.dtype, np.integer):
        raise ValueError(
            f"n_relevant must be an {lengths.shape} integer array, got {n_rel.dtype} of shape {n_rel.shape}"
        )
    short = np.flatnonzero(n_rel < lengths)
    if short.size:
        u = short[0]
        raise ValueError(f"n_relevant[{u}] must be >= len(ranks_per_user[{u}])={lengths[u]}, got {n_rel[u]}")
    return n_rel.astype(np.int64)


def user_metrics(
    ranks_per_user: Sequence[np.ndarray],
    n_candidates: np.ndarray | int,
    ks: Sequence[int],
    *,
    n_relevant: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every per-user metric for many users at once, vectorised over the concatenated ranks.

    Args:
        ranks_per_user: n_users arrays of ranks, as for the one-user functions.
        n_candidates: pool size, one int for all users or an (n_users,) array.
        ks: cut-offs; each gives keys `ndcg@k`, `recall@k`, `hr@k`.
        n_relevant: (n_users,) relevant items per user, for recall and NDCG; defaults to the ranks' lengths.

    Returns:
        {"ndcg@k", "recall@k", "hr@k" for each k, "mrr", "auc"} -> (n_users,) float64, equal to the
        one-user functions (nan where those give nan).

    >>> out = user_metrics([np.array([0, 3]), np.array([3])], n_candidates=5, ks=[1])
    >>> out["recall@1"].tolist(), out["mrr"].tolist(), out["auc"].tolist()  # auc: (3 + 1) / 6, 1 / 4
    ([0.5, 0.0], [1.0, 0.25], [0.6666666666666666, 0.25])
    """
    ks = [_check_positive_int(k, "ks item") for k in ks]
    if not ks:
        raise ValueError("ks must name at least one cut-off, got an empty sequence")
    flat, user, lengths, n_cand = _stack_ranks(ranks_per_user, n_candidates)
    n_users = lengths.size
    n_rel = lengths if n_relevant is None else _check_n_relevant_per_user(n_relevant, lengths)

    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 -> nan for users with no relevant item
        for k in ks:
            hit = flat < k
            n_hits = np.bincount(user, weights=hit.astype(np.float64), minlength=n_users)
            out[f"ndcg@{k}"] = stacked_ndcg(flat, user, n_rel, k)
            out[f"recall@{k}"] = n_hits / n_rel
            out[f"hr@{k}"] = (n_hits > 0).astype(np.float64)

        starts = np.cumsum(lengths) - lengths
        mrr = np.zeros(n_users)
        found = lengths > 0
        mrr[found] = 1.0 / (flat[starts[found]] + 1.0)
        out["mrr"] = mrr

        n_negative = n_cand - lengths
        negatives_above = flat - (np.arange(flat.size) - starts[user])
        pairs_right = np.bincount(
            user, weights=(n_negative[user] - negatives_above).astype(np.float64), minlength=n_users
        )
        n_pairs = lengths * n_negative
        out["auc"] = np.where(n_pairs > 0, pairs_right / n_pairs, np.nan)
    return out


def stacked_ndcg(flat: np.ndarray, user: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k from the 0-based ranks of relevant items, all users' concatenated (any order).

    Args:
        flat: (total,) ranks; `user`: (total,) the user each rank belongs to, in [0, len(n_relevant)).
        n_relevant: (n_users,) relevant items per user (the ideal DCG's length, cut at k); 0 gives nan.

    >>> stacked_ndcg(np.array([0, 3, 0]), np.array([0, 0, 1]), np.array([2, 1]), k=2).round(3).tolist()
    [0.613, 1.0]
    """
    n_users = len(n_relevant)
    dcg = np.bincount(user, weights=np.where(flat < k, 1.0 / np.log2(flat + 2.0), 0.0), minlength=n_users)
    depth = int(min(k, n_relevant.max(initial=0)))  # the ideal DCG is never read beyond this position
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(depth) + 2.0))])
    with np.errstate(divide="ignore", invalid="ignore"):
        return dcg / ideal[np.minimum(n_relevant, k)]


def mean_over_users(per_user_values: np.ndarray) -> float:
    """Mean of a per-user metric, skipping users where it is undefined (nan); nan if all are.

    >>> mean_over_users(np.array([1.0, 0.0, np.nan, 0.5]))
    0.5
    """
    values = _check_values(per_user_values, "per_user_values")
    if values.size == 0:
        raise ValueError("per_user_values is empty: no user was evaluated")
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def per_group_mean(values: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Mean of `values` per group label (e.g. per held-out category), skipping nan like `mean_over_users`.

    Args:
        values: (n,) per-row metric values.
        groups: (n,) group label of each row; keys of the result are `str(label)`, sorted by label.

    >>> per_group_mean(np.array([1.0, 0.0, 0.5]), np.array(["tents", "bags", "tents"]))
    {'bags': 0.0, 'tents': 0.75}
    """
    values = _check_values(values, "values")
    groups = np.asarray(groups)
    if groups.shape != values.shape:
        raise ValueError(f"groups must have the shape of values {values.shape}, got {groups.shape}")
    labels, inverse = np.unique(groups, return_inverse=True)
    defined = ~np.isnan(values)
    sums = np.bincount(inverse, weights=np.where(defined, values, 0.0), minlength=labels.size)
    counts = np.bincount(inverse, weights=defined.astype(np.float64), minlength=labels.size)
    with np.errstate(invalid="ignore"):
        means = sums / counts
    return {str(label): float(mean) for label, mean in zip(labels.tolist(), means, strict=True)}


def bootstrap_ci(
    values: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean over users.

    Resamples users with replacement `n_resamples` times (index matrices drawn in chunks to bound memory)
    and returns the `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of the resampled means.

    Args:
        values: (n_users,) per-user metric values, all defined (drop nan users first).

    >>> bootstrap_ci(np.array([0.5, 0.5, 0.5]))
    (0.5, 0.5)
    """
    values = _check_values(values, "values")
    if values.size == 0:
        raise ValueError("values is empty: no user to resample")
    if np.isnan(values).any():
        raise ValueError(f"values must not contain nan, got {int(np.isnan(values).sum())} nan entries")
    n_resamples = _check_positive_int(n_resamples, "n_resamples")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    n = values.size
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one user's recommendations.

    Args:
        recommended: (n_users, k) item indexes in [0, n_items).

    >>> catalog_coverage(np.array([[0, 1], [1, 2]]), n_items=6)
    0.5
    """
    n_items = _check_positive_int(n_items, "n_items")
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {recommended.shape}")
    if recommended.size == 0:
        return 0.0
    if not np.issubdtype(recommended.dtype, np.integer):
        raise ValueError(f"recommended must hold integer item indexes, got dtype {recommended.dtype}")
    low, high = recommended.min(), recommended.max()
    if low < 0 or high >= n_items:
        bad = low if low < 0 else high
        raise ValueError(f"recommended must hold item indexes in [0, n_items={n_items}), got {bad}")
    return float(np.unique(recommended).size / n_items)


def paired_bootstrap_ci(
    differences: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-user paired differences (model A minus model B on the same
    users): the users are resampled together, so what the two models share cancels out.

    >>> paired_bootstrap_ci(np.array([0.5, 0.5, np.nan]))  # users with an undefined difference are left out
    (0.5, 0.5)
    """
    diff = _check_values(differences, "differences")
    return bootstrap_ci(diff[~np.isnan(diff)], n_resamples=n_resamples, confidence=confidence, seed=seed)
