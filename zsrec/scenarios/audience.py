"""Ad and campaign audience targeting: rank users for a piece of text (an ad, a coupon, a new product).

The ad becomes one vector (its text embedded, or the mean of named items, or a category's centroid). A user's
score is a *soft count* of their history items close to it: τ·log Σ_{i∈H_u} exp((cos(e_i, ad) − 1) / τ).
With a small temperature τ only items very like the ad count, and each one counts, so a household that
buys yoghurt every week outranks one that bought it once, and both outrank one that never did; nothing is
learned from responses. `profile` (cosine to the user's mean history vector) is kept for comparison: it
ignores how much a user buys, which is why it loses to the plain activity count on coupons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.errors import ConfigError, check_at_least, check_choice, check_positive
from zsrec.evaluation.metrics import auc
from zsrec.scenarios.ranking import ranks_of_relevant

SCORINGS = ("soft-count", "profile")


@dataclass(frozen=True)
class AudienceSettings:
    """How users are scored for an ad."""

    scoring: str = "soft-count"  # "soft-count" (history items near the ad) or "profile" (mean-vector cosine)
    temperature: float = 0.05  # soft-count: smaller counts only closer items
    min_history: int = 3  # users with fewer distinct history items are not ranked

    def __post_init__(self) -> None:
        check_choice(self, "scoring", SCORINGS)
        check_positive(self, "temperature")
        check_at_least(self, min_history=1)


@dataclass(frozen=True)
class AudienceMember:
    user_id: str
    score: float
    n_history: int
    because: tuple[tuple[str, float], ...]  # (history item title, cosine to the ad), closest first


def audience_scores(
    item_vectors: np.ndarray, histories: list[np.ndarray], ads: np.ndarray, settings: AudienceSettings
) -> np.ndarray:
    """(len(histories), n_ads) scores; an empty history scores -inf.

    Args:
        item_vectors: (n_items, d) L2-normalised item text embeddings.
        histories: per user, item indexes (repeats count, in soft-count).
        ads: (n_ads, d) L2-normalised ad vectors.
    """
    ads = np.atleast_2d(np.asarray(ads, dtype=np.float32))
    out = np.full((len(histories), len(ads)), -np.inf, dtype=np.float64)
    filled = [r for r, h in enumerate(histories) if len(h)]
    if not filled:
        return out
    if settings.scoring == "profile":
        means = np.stack([item_vectors[histories[r]].mean(axis=0) for r in filled])
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        out[filled] = means @ ads.T
        return out
    sims, starts = history_similarities(item_vectors, [histories[r] for r in filled], ads)
    out[filled] = soft_count(sims, starts, settings.temperature)
    return out


def history_similarities(
    item_vectors: np.ndarray, histories: list[np.ndarray], ads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of every history event to every ad, (n_events, n_ads), and where each (non-empty) history starts.

    Computed once, it serves every temperature (see `soft_count`).
    """
    flat = np.concatenate(histories)
    starts = np.cumsum([0] + [len(h) for h in histories[:-1]])
    per_item = (item_vectors @ np.atleast_2d(ads).T).astype(np.float64)  # (n_items, n_ads): cheaper than per event
    return per_item[flat], starts


def soft_count(sims: np.ndarray, starts: np.ndarray, temperature: float) -> np.ndarray:
    """τ·log Σ_events exp((cos − 1)/τ) per history: (n_histories, n_ads)."""
    weights = np.exp((sims - 1.0) / temperature)  # ≤ 1
    return temperature * np.log(np.add.reduceat(weights, starts, axis=0) + 1e-300)


def rank_audience(
    data: Dataset,
    item_vectors: np.ndarray,
    ad: np.ndarray,
    *,
    k: int = 10,
    settings: AudienceSettings | None = None,
    n_reasons: int = 3,
) -> list[AudienceMember]:
    """The `k` users of `data` most likely to respond to `ad`, each with the history items closest to it."""
    settings = settings or AudienceSettings()
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    histories = data.histories()
    users = np.asarray([u for u, h in enumerate(histories) if len(np.unique(h)) >= settings.min_history])
    if len(users) == 0:
        raise ConfigError(f"no user of {data.name} has {settings.min_history} or more history items")
    scores = audience_scores(item_vectors, [histories[u] for u in users], ad[None, :], settings)[:, 0]
    top = np.argsort(-scores, kind="stable")[:k]
    titles, ids = data.items["title"].to_numpy(), data.users["user_id"].to_numpy()
    out = []
    for row in top.tolist():
        h = np.unique(histories[users[row]])
        sims = item_vectors[h] @ ad
        reasons: dict[str, float] = {}
        for j in np.argsort(-sims, kind="stable"):
            reasons.setdefault(str(titles[h[j]]), float(sims[j]))
            if len(reasons) == n_reasons:
                break
        out.append(AudienceMember(str(ids[users[row]]), float(scores[row]), len(h), tuple(reasons.items())))
    return out


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of some item vectors: one vector for a group of items or a category."""
    if len(vectors) == 0:
        raise ConfigError("no item to build the ad from")
    v = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def case_metrics(scores: np.ndarray, labels: np.ndarray, *, k: int = 10, seed: int = 0) -> dict[str, float]:
    """AUC and precision@k of one ranked audience against who responded (ties broken at random, seeded).

    >>> case_metrics(np.array([0.9, 0.1, 0.5]), np.array([True, False, False]), k=1)
    {'auc': 1.0, 'precision@1': 1.0}
    """
    labels = np.asarray(labels, dtype=bool)
    ranks = ranks_of_relevant(np.asarray(scores)[None, :], [np.flatnonzero(labels)], seed=seed)[0]
    return {"auc": auc(ranks, len(labels)), f"precision@{k}": float(np.count_nonzero(ranks < k) / min(k, len(labels)))}
