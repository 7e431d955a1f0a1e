"""Full-ranking evaluation of a fitted recommender on an `EvalSplit`: plain numbers out, no printing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsrec.data.splits import LAUNCH, EvalSplit
from zsrec.errors import ConfigError, check_at_most
from zsrec.evaluation.metrics import bootstrap_ci, catalog_coverage, user_metrics
from zsrec.evaluation.ranking import tiebreak_order
from zsrec.models.base import Recommender, mask_seen

#: bounds on the size options: far beyond any useful value, well below what would exhaust memory or time
MAX_BOOTSTRAP = 100_000  # resamples: the CI's quantiles are stable long before
MAX_BATCH_USERS = 65_536  # users scored at once: a (batch, candidates) float32 matrix


@dataclass(frozen=True)
class EvalSettings:
    """What to measure."""

    ks: tuple[int, ...] = (10, 50)  # cut-offs for NDCG/Recall/HR
    # candidate pools: "new" (held-out items) and/or "all" (whole catalog); "launch" for the launch protocol
    pools: tuple[str, ...] = ("new",)
    n_bootstrap: int = 1000  # bootstrap resamples for the NDCG confidence intervals (0 = none)
    seed: int = 0  # seeds the tie-breaking order and the bootstrap
    batch_size: int = 256  # users scored per call to `model.score`
    per_category: bool = True  # also report metrics per held-out category
    # launch protocol: the model each model's paired CIs compare against; None = als where run, else the first
    reference: str | None = None

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"ks must be positive integers, got {self.ks}")
        bad = [p for p in self.pools if p not in ("new", "all", "launch")]
        if bad or not self.pools or ("launch" in self.pools and len(self.pools) > 1):
            raise ConfigError(f"pools must be 'new' and/or 'all', or 'launch' alone, got {self.pools}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        check_at_most(self, n_bootstrap=MAX_BOOTSTRAP, batch_size=MAX_BATCH_USERS)


class PrecomputedScores:
    """A score matrix for given users behind the `score` call `target_ranks` makes (used when tuning)."""

    def __init__(self, users: np.ndarray, scores: np.ndarray) -> None:
        self._row = {int(u): r for r, u in enumerate(users)}
        self._scores = scores

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._scores[[self._row[int(u)] for u in users]]


def target_ranks(
    model: Recommender,
    split: EvalSplit,
    pool: str,
    *,
    seed: int = 0,
    batch_size: int = 256,
    top_k: int = 10,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Rank every candidate of `pool` for each test user; return the 0-based ranks of their targets.

    Ties are broken by one seeded random order of the candidates, so a model that gives everything the same
    score (popularity on new items) ranks like `random` instead of by catalog order. In the `all` pool, the
    user's own history is excluded from the candidates.

    Returns:
        ranks: per test user, the ranks of `split.targets[u]` (same order), among the pool's candidates.
        top: (n_users, top_k) item indexes of each user's best-ranked candidates (for coverage).
    """
    cand = split.candidates(pool)
    n_cand = len(cand)
    position = np.full(split.train.n_items, -1, dtype=np.int64)
    position[cand] = np.arange(n_cand)
    tiebreak = tiebreak_order(seed, n_cand)
    ranks: list[np.ndarray] = []
    tops = []
    for start in range(0, len(split.test_users), batch_size):
        users = split.test_users[start : start + batch_size]
        scores = np.asarray(model.score(users, cand), dtype=np.float64)
        if scores.shape != (len(users), n_cand):
            raise ValueError(
                f"{type(model).__name__}.score returned shape {scores.shape}, expected {(len(users), n_cand)}"
            )
        if pool in ("all", "launch"):
            mask_seen(scores, users, cand, model.histories_)
        scores = np.nan_to_num(scores, nan=-np.inf)
        # sort by score descending, then by the seeded tie-break order
        order = np.lexsort((np.broadcast_to(tiebreak, scores.shape), -scores), axis=-1)
        rank_of = np.empty_like(order)
        np.put_along_axis(rank_of, order, np.arange(n_cand)[None, :].repeat(len(users), 0), axis=1)
        for row in range(len(users)):
            ranks.append(rank_of[row, position[split.targets[start + row]]])
        tops.append(cand[order[:, :top_k]])
        if progress is not None:
            progress(len(users))
    top = np.concatenate(tops) if tops else np.empty((0, top_k), dtype=np.int64)
    return ranks, top


def evaluate_model(
    model: Recommender,
    split: EvalSplit,
    settings: EvalSettings = EvalSettings(),
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of a fitted `model` on `split`, per pool: macro over users, CIs and a per-category breakdown.

    Returns `{pool: {"ndcg@10": x, "recall@10": x, "hr@10": x, "mrr": x, "auc": x, "coverage@10": x,
    "ndcg@10_ci": [lo, hi], "n_users": n, "n_candidates": n, "per_category": {cat: {...}}}}`.
    """
    out: dict[str, dict[str, Any]] = {}
    if split.protocol == LAUNCH:
        out["launch"], _ = launch_metrics(model, split, settings, progress)
        return out
    for pool in settings.pools:
        n_cand = len(split.candidates(pool))
        ranks, top = target_ranks(
            model,
            split,
            pool,
            seed=settings.seed,
            batch_size=settings.batch_size,
            top_k=min(settings.ks),
            progress=progress,
        )
        per_user = user_metrics(ranks, n_cand, settings.ks)
        result: dict[str, Any] = {
            name: float(np.nanmean(v)) if len(v) else float("nan") for name, v in per_user.items()
        }
        if settings.n_bootstrap > 0 and len(ranks):
            for k in settings.ks:
                lo, hi = bootstrap_ci(per_user[f"ndcg@{k}"], n_resamples=settings.n_bootstrap, seed=settings.seed)
                result[f"ndcg@{k}_ci"] = [float(lo), float(hi)]
        result[f"coverage@{min(settings.ks)}"] = catalog_coverage(top, split.train.n_items) if len(top) else 0.0
        result["n_users"] = len(ranks)
        result["n_candidates"] = n_cand
        if settings.per_category and split.heldout_categories:
            result["per_category"] = _per_category(split, ranks, n_cand, settings.ks)
        out[pool] = result
    return out


def _per_category(
    split: EvalSplit, ranks: list[np.ndarray], n_cand: int, ks: tuple[int, ...]
) -> dict[str, dict[str, float]]:
    """Metrics per held-out category: for each user with targets there, their ranks of those targets only."""
    out = {}
    for cat in split.heldout_categories:
        sub = []
        for user_ranks, targets in zip(ranks, split.targets, strict=True):
            in_cat = split.item_category[targets] == cat
            if in_cat.any():
                sub.append(user_ranks[in_cat])
        if not sub:
            continue
        metrics = user_metrics(sub, n_cand, ks)
        out[cat] = {name: float(np.nanmean(v)) for name, v in metrics.items()} | {"n_users": len(sub)}
    return out


def launch_metrics(
    model: Recommender,
    split: EvalSplit,
    settings: EvalSettings = EvalSettings(),
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """The launch protocol's metrics of a fitted `model`: one ranking of the whole catalog (minus each user's
    training items) against the test window's targets, old and new alike.

    Returns:
        `{"ndcg@k", "recall@k", "recall@k_new", "recall@k_warm", "new_share@k", "hr@k" for each k, "mrr",
        "ndcg@k_ci", "n_users", "n_users_new", "new_target_share", "n_candidates", "per_category"}` (recall@k_new
        over users with a new-category target, recall@k_warm over users with an old one; new_share@k the share
        of top-k slots that go to held-out items), and the (n_users,) NDCG at the smallest k (for paired CIs).
    """
    ks = settings.ks
    n_cand = len(split.candidates("launch"))
    ranks, top = target_ranks(
        model, split, "launch", seed=settings.seed, batch_size=settings.batch_size, top_k=max(ks), progress=progress
    )
    per_user = user_metrics(ranks, n_cand, ks)
    result: dict[str, Any] = {name: float(np.nanmean(v)) for name, v in per_user.items() if name != "auc"}
    is_new = np.zeros(split.train.n_items, dtype=bool)
    is_new[split.new_items] = True
    new_of = [is_new[t] for t in split.targets]
    for k in ks:
        hits_new = np.asarray([np.count_nonzero(r[n] < k) for r, n in zip(ranks, new_of, strict=True)], float)
        hits_warm = np.asarray([np.count_nonzero(r[~n] < k) for r, n in zip(ranks, new_of, strict=True)], float)
        n_new = np.asarray([n.sum() for n in new_of], dtype=float)
        n_warm = np.asarray([len(n) for n in new_of], dtype=float) - n_new
        result[f"recall@{k}_new"] = _mean_share(hits_new, n_new)
        result[f"recall@{k}_warm"] = _mean_share(hits_warm, n_warm)
        result[f"new_share@{k}"] = float(is_new[top[:, :k]].mean()) if len(top) else 0.0
    if settings.n_bootstrap > 0 and len(ranks):
        for k in ks:
            lo, hi = bootstrap_ci(per_user[f"ndcg@{k}"], n_resamples=settings.n_bootstrap, seed=settings.seed)
            result[f"ndcg@{k}_ci"] = [float(lo), float(hi)]
    result["n_users"] = len(ranks)
    result["n_users_new"] = int(sum(bool(n.any()) for n in new_of))
    result["new_target_share"] = float(np.concatenate(new_of).mean()) if new_of else 0.0
    result["n_candidates"] = n_cand
    return result, per_user[f"ndcg@{min(ks)}"]


def _mean_share(hits: np.ndarray, totals: np.ndarray) -> float:
    """Mean of hits / totals over the users with totals > 0 (nan where none has any)."""
    defined = totals > 0
    return float(np.mean(hits[defined] / totals[defined])) if defined.any() else float("nan")
