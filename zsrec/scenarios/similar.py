"""Cross-category recommendation: items related to one item, optionally only in other categories.

Running shoes → sportswear: the query item's text embedding against every other item's, with the query's
own category (at `level`) left out when asked. Evaluated item → item on real behaviour: from a user's last
item, rank the items of a category held out of training (leave-category-out), and, on Complete Journey,
the items of other departments bought in the same basket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit
from zsrec.errors import ConfigError
from zsrec.scenarios.ranking import ranking_summary, ranks_of_relevant

#: item × item scorer: (query item indexes, candidate item indexes) -> (n_queries, n_candidates)
ItemScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SimilarItem:
    item_id: str
    title: str
    category: str
    similarity: float


def similar_items(
    data: Dataset,
    vectors: np.ndarray,
    item: int,
    *,
    k: int = 10,
    other_categories: bool = False,
    level: int = 1,
) -> list[SimilarItem]:
    """The `k` items whose text is closest to item `item`'s (cosine of L2-normalised `vectors`).

    With `other_categories`, items sharing the query's level-`level` category are left out.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    keep = np.ones(data.n_items, dtype=bool)
    keep[item] = False
    if other_categories:
        cats = data.category_at(level)
        keep &= cats != cats[item]
    cand = np.flatnonzero(keep)
    if len(cand) == 0:
        return []
    sims = vectors[cand] @ vectors[item]
    top = cand[np.argsort(-sims, kind="stable")[:k]]
    sim_of = dict(zip(cand.tolist(), sims.tolist(), strict=True))
    items = data.items
    return [
        SimilarItem(str(items["item_id"].iat[i]), str(items["title"].iat[i]), str(items["category"].iat[i]), sim_of[i])
        for i in top.tolist()
    ]


def embedding_scorer(vectors: np.ndarray) -> ItemScorer:
    """Cosine between L2-normalised item vectors."""
    return lambda queries, cands: vectors[queries] @ vectors[cands].T


def random_scorer(seed: int = 0) -> ItemScorer:
    rng = np.random.default_rng(seed)
    return lambda queries, cands: rng.random((len(queries), len(cands)))


def last_item_queries(split: EvalSplit) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per test user of a leave-category-out split: their last history item, and their held-out items
    as positions in `split.new_items`."""
    histories = split.train.histories()
    position = np.full(split.train.n_items, -1, dtype=np.int64)
    position[split.new_items] = np.arange(len(split.new_items))
    queries = np.asarray([histories[int(u)][-1] for u in split.test_users], dtype=np.int64)
    return queries, [position[t] for t in split.targets]


def evaluate_last_item(
    split: EvalSplit,
    scorers: dict[str, ItemScorer],
    *,
    ks: tuple[int, ...] = (10, 50),
    n_bootstrap: int = 1000,
    seed: int = 0,
    batch: int = 512,
) -> dict[str, dict[str, float]]:
    """From each test user's last item outside the held-out categories, rank every held-out item."""
    queries, relevant = last_item_queries(split)
    return {
        name: _evaluate(scorer, queries, split.new_items, relevant, ks, n_bootstrap, seed, batch)
        for name, scorer in scorers.items()
    }


@dataclass(frozen=True)
class BasketQueries:
    """Item → item queries from baskets: each query item's candidates are every item outside its group."""

    queries: np.ndarray  # (n,) query item indexes
    relevant: list[np.ndarray]  # per query, item indexes bought with it in the basket, other groups only
    groups: np.ndarray  # (n_items,) group label per item (e.g. department)


def basket_queries(
    data: Dataset, baskets: np.ndarray, items: np.ndarray, *, level: int = 1, n_queries: int = 2000, seed: int = 0
) -> BasketQueries:
    """Sample (basket, item) queries from baskets holding items of at least two level-`level` categories.

    Args:
        baskets, items: one row per basket line (basket id, item index of `data`).
    """
    groups = data.category_at(level)
    order = np.argsort(baskets, kind="stable")
    baskets, items = np.asarray(baskets)[order], np.asarray(items)[order]
    bounds = np.flatnonzero(np.diff(baskets)) + 1
    rng = np.random.default_rng(seed)
    chunks = [np.unique(c) for c in np.split(items, bounds)]
    mixed = [c for c in chunks if len(c) >= 2 and len(set(groups[c].tolist())) >= 2]
    if not mixed:
        raise ConfigError("no basket holds items of two different categories")
    picks = rng.choice(len(mixed), size=min(n_queries, len(mixed)), replace=False)
    queries, relevant = [], []
    for p in picks:
        basket = mixed[int(p)]
        q = int(rng.choice(basket))
        queries.append(q)
        relevant.append(basket[groups[basket] != groups[q]])
    return BasketQueries(np.asarray(queries, dtype=np.int64), relevant, groups)


def evaluate_baskets(
    bq: BasketQueries,
    scorers: dict[str, ItemScorer],
    *,
    ks: tuple[int, ...] = (10, 50),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Rank all items of the other groups for each query; the basket's other-group items are relevant."""
    out: dict[str, dict[str, float]] = {}
    by_group: dict[str, list[int]] = {}
    for row, q in enumerate(bq.queries):
        by_group.setdefault(str(bq.groups[q]), []).append(row)
    for name, scorer in scorers.items():
        ranks: list[np.ndarray] = [np.empty(0)] * len(bq.queries)
        n_cand = np.zeros(len(bq.queries), dtype=np.int64)
        for group, rows in by_group.items():
            cand = np.flatnonzero(bq.groups != group)
            position = np.full(len(bq.groups), -1, dtype=np.int64)
            position[cand] = np.arange(len(cand))
            rel = [position[bq.relevant[r]] for r in rows]
            scores = scorer(bq.queries[rows], cand)
            for r, rk in zip(rows, ranks_of_relevant(scores, rel, seed=seed), strict=True):
                ranks[r], n_cand[r] = rk, len(cand)
        out[name] = ranking_summary(ranks, n_cand, ks, n_bootstrap=n_bootstrap, seed=seed)
    return out


def _evaluate(
    scorer: ItemScorer,
    queries: np.ndarray,
    cand: np.ndarray,
    relevant: list[np.ndarray],
    ks: tuple[int, ...],
    n_bootstrap: int,
    seed: int,
    batch: int,
) -> dict[str, float]:
    ranks: list[np.ndarray] = []
    for start in range(0, len(queries), batch):
        scores = scorer(queries[start : start + batch], cand)
        ranks.extend(ranks_of_relevant(scores, relevant[start : start + batch], seed=seed))
    return ranking_summary(ranks, len(cand), ks, n_bootstrap=n_bootstrap, seed=seed)
