"""Ad and campaign audience targeting: rank users for a piece of text (an ad, a coupon, a new product).

The ad becomes one vector (its text embedded, or the mean of named items, or a category's centroid); users are
scored by zsrec.models.audience (a soft count of their history items close to the ad), the scoring the service's
`/audience` uses too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.errors import ConfigError
from zsrec.evaluation.metrics import auc
from zsrec.models.audience import (
    SCORINGS,
    AudienceSettings,
    audience_scores,
    eligible,
    history_similarities,
    mean_vector,
    soft_count,
)
from zsrec.scenarios.ranking import ranks_of_relevant

__all__ = [  # the scoring lives in zsrec.models.audience; these names stay importable from here
    "SCORINGS",
    "AudienceMember",
    "AudienceSettings",
    "audience_scores",
    "case_metrics",
    "history_similarities",
    "mean_vector",
    "rank_audience",
    "soft_count",
]


@dataclass(frozen=True)
class AudienceMember:
    user_id: str
    score: float
    n_history: int
    because: tuple[tuple[str, float], ...]  # (history item title, cosine to the ad), closest first


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
    users = eligible(histories, settings.min_history)
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


def case_metrics(scores: np.ndarray, labels: np.ndarray, *, k: int = 10, seed: int = 0) -> dict[str, float]:
    """AUC and precision@k of one ranked audience against who responded (ties broken at random, seeded).

    >>> case_metrics(np.array([0.9, 0.1, 0.5]), np.array([True, False, False]), k=1)
    {'auc': 1.0, 'precision@1': 1.0}
    """
    labels = np.asarray(labels, dtype=bool)
    ranks = ranks_of_relevant(np.asarray(scores)[None, :], [np.flatnonzero(labels)], seed=seed)[0]
    return {"auc": auc(ranks, len(labels)), f"precision@{k}": float(np.count_nonzero(ranks < k) / min(k, len(labels)))}
