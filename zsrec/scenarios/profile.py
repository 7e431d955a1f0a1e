"""User interest profiles: a user's top interest tags (category names) and the history items behind each.

A tag's score is zero-shot: the cosine between the user's history vector and the centroid of the
category's item texts (the `category-affinity` model), so a category the user never touched can be a tag.
`new_only` keeps to categories outside the user's history (the interests they have not acted on yet).
Evaluated as precision@K of the tags against the categories the user buys later (time or sequence split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import CATEGORY_SEP, Dataset
from zsrec.errors import ConfigError
from zsrec.scenarios.adoption import CategoryScorer


@dataclass(frozen=True)
class InterestTag:
    tag: str  # the category's last level, e.g. "Coffee"
    category: str  # its full path
    score: float  # cosine between the user and the category
    in_history: bool  # whether the user already bought from it
    because: tuple[tuple[str, float], ...]  # (history item title, cosine to the category), closest first


def interest_tags(
    scorer: CategoryScorer, user: int, *, k: int = 5, new_only: bool = False, n_reasons: int = 3
) -> list[InterestTag]:
    """The user's `k` best-scored categories at the scorer's level, each with its closest history items."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    model, data = scorer.model, scorer.data
    scores = scorer.cosines(np.asarray([user]))[0]
    history = np.unique(model.histories_[user])
    owned = np.zeros(len(scorer.names), dtype=bool)
    owned[scorer.item_category[history]] = True
    allowed = scorer.real & ~(owned if new_only else False)
    rows = np.flatnonzero(allowed)
    rows = rows[np.argsort(-scores[rows], kind="stable")[:k]]
    titles = data.items["title"].to_numpy()
    tags = []
    for r in rows.tolist():
        sims = model.item_vectors_[history] @ model.category_vectors_[r] if len(history) else np.empty(0)
        reasons: dict[str, float] = {}
        for j in np.argsort(-sims, kind="stable"):
            reasons.setdefault(str(titles[history[j]]), float(sims[j]))
            if len(reasons) == n_reasons:
                break
        name = str(scorer.names[r])
        tags.append(
            InterestTag(name.split(CATEGORY_SEP)[-1], name, float(scores[r]), bool(owned[r]), tuple(reasons.items()))
        )
    return tags


def split_by_time(data: Dataset, cutoff: float) -> tuple[Dataset, Dataset]:
    """(interactions before `cutoff`, interactions at or after it) as two datasets over the same catalog."""
    ts = data.interactions["timestamp"].to_numpy()
    return data.with_interactions(data.interactions[ts < cutoff]), data.with_interactions(
        data.interactions[ts >= cutoff]
    )


def split_by_sequence(data: Dataset, fraction: float = 0.8) -> tuple[Dataset, Dataset]:
    """Each user's first `fraction` of interactions (in order) and the rest: for data without timestamps."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    inter = data.interactions
    position = inter.groupby("user", sort=False).cumcount().to_numpy()
    length = inter.groupby("user", sort=False)["item"].transform("size").to_numpy()
    early = position < np.floor(fraction * length)
    return data.with_interactions(inter[early]), data.with_interactions(inter[~early])


def category_sets(data: Dataset, level: int, names: np.ndarray) -> list[set[int]]:
    """Per user, the rows of `names` (level-`level` paths) they interacted with in `data`."""
    row = {n: i for i, n in enumerate(names.tolist())}
    item_row = np.asarray([row.get(c, -1) for c in data.category_at(level)], dtype=np.int64)
    out: list[set[int]] = [set() for _ in range(data.n_users)]
    for u, i in zip(data.interactions["user"].to_numpy(), data.interactions["item"].to_numpy(), strict=True):
        if item_row[i] >= 0:
            out[int(u)].add(int(item_row[i]))
    return out


def tag_precision(
    scores: np.ndarray,
    users: np.ndarray,
    past: list[set[int]],
    future: list[set[int]],
    allowed: np.ndarray,
    *,
    k: int,
    new_only: bool,
) -> np.ndarray:
    """Per user, precision@k of the top-k allowed columns of `scores` (users × categories) against `future`.

    With `new_only`, categories in the user's past are neither tags nor targets; users without a future
    target are skipped (nan).
    """
    out = np.full(len(users), np.nan)
    for row, u in enumerate(users.tolist()):
        target = future[u] - past[u] if new_only else future[u]
        if not target:
            continue
        ok = allowed.copy()
        if new_only and past[u]:
            ok[list(past[u])] = False
        cols = np.flatnonzero(ok)
        top = cols[np.argsort(-scores[row, cols], kind="stable")[:k]]
        out[row] = len(target.intersection(top.tolist())) / k
    return out
