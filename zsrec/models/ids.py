"""External ids for a fitted model: which item, user and category each index stood for when it was fitted.

Models work on integer indexes; `Recommender.recommend_users` turns ids into indexes and back with the
`CatalogIds` recorded by `fit`. They are saved as `ids.json` beside the model's arrays (text, never pickle);
a folder written before ids were recorded loads without them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zsrec.data.dataset import CATEGORY_SEP, Dataset
from zsrec.errors import ConfigError
from zsrec.io import atomic_write_text

IDS_FILE = "ids.json"
RANKING_COLUMNS = ("user_id", "item_id", "score", "rank")


@dataclass(frozen=True)
class CatalogIds:
    """Item ids, user ids and item category paths, in index order."""

    items: np.ndarray  # (n_items,) str
    users: np.ndarray  # (n_users,) str
    categories: np.ndarray  # (n_items,) str, "" where unknown

    @classmethod
    def of(cls, data: Dataset) -> CatalogIds:
        return cls(
            items=_text(data.items["item_id"]),
            users=_text(data.users["user_id"]),
            categories=_text(data.items["category"]),
        )

    def write(self, directory: Path) -> None:
        values = {"items": self.items.tolist(), "users": self.users.tolist(), "categories": self.categories.tolist()}
        atomic_write_text(directory / IDS_FILE, json.dumps(values, ensure_ascii=False))

    @classmethod
    def read(cls, directory: Path) -> CatalogIds | None:
        """The ids saved in `directory`; None for a folder saved before ids were recorded."""
        path = directory / IDS_FILE
        if not path.is_file():
            return None
        values = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{key: np.asarray(values[key], dtype=object) for key in ("items", "users", "categories")})


def _text(column: pd.Series) -> np.ndarray:
    return column.fillna("").astype(str).to_numpy(dtype=object)


def recommend_users(
    model: Any,  # a fitted zsrec.models.base.Recommender (typed loosely: base.py imports this module)
    user_ids: Iterable[object],
    k: int = 10,
    *,
    new_only: bool = False,
    categories: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """The body of `Recommender.recommend_users`: ids in, `user_id, item_id, score, rank` rows out."""
    ids = model_ids(model)
    check_k(k)
    wanted = [str(u) for u in ([user_ids] if isinstance(user_ids, str) else user_ids)]
    users = user_indexes(ids, wanted)
    candidates = candidate_items(model, new_only=new_only, categories=categories)
    return ranking_rows(model, users, wanted, candidates, k)


def model_ids(model: Any) -> CatalogIds:
    """The fitted model's ids; ConfigError for a model saved without them."""
    model._check_fitted()
    if model.ids_ is None:
        raise ConfigError(
            f"this {model.name} model was saved without its item and user ids (an older zsrec); "
            "fit it again to recommend by id"
        )
    return model.ids_


def check_k(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")


def candidate_items(model: Any, *, new_only: bool = False, categories: Sequence[str] | str | None = None) -> np.ndarray:
    """Item indexes a ranking may hold: all, or only new ones (no interaction in the data the model was fitted
    on), or only those in `categories` (see `category_mask`)."""
    ids = model_ids(model)
    candidates = np.arange(len(ids.items))
    if new_only:  # items nobody interacted with in the data the model was fitted on
        seen = np.concatenate([np.empty(0, dtype=np.int64), *model.histories_])
        candidates = np.setdiff1d(candidates, seen)
    if categories is not None:
        candidates = candidates[category_mask(ids.categories, categories)[candidates]]
    return candidates


def empty_ranking() -> pd.DataFrame:
    types = (str, str, float, int)
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(RANKING_COLUMNS, types, strict=True)})


def ranking_rows(model: Any, users: np.ndarray, wanted: Sequence[str], candidates: np.ndarray, k: int) -> pd.DataFrame:
    """`user_id, item_id, score, rank` rows of the unseen top-`k` among `candidates` for user indexes `users`
    (whose ids are `wanted`, in the same order)."""
    ids = model_ids(model)
    if len(users) == 0 or len(candidates) == 0:
        return empty_ranking()
    ranking = model.recommend(users, k=k, candidates=candidates, exclude_seen=True)
    keep = np.isfinite(ranking.scores)  # seen items sit at -inf when fewer than k others remain
    rows, cols = np.nonzero(keep)
    return pd.DataFrame(
        {
            "user_id": np.asarray(wanted, dtype=object)[rows],
            "item_id": ids.items[ranking.items[rows, cols]],
            "score": ranking.scores[rows, cols].astype(np.float64),
            "rank": cols.astype(np.int64) + 1,
        }
    )


def user_indexes(ids: CatalogIds, wanted: Sequence[str]) -> np.ndarray:
    """Indexes of the user ids `wanted`; ConfigError naming the first unknown one."""
    position = {u: i for i, u in enumerate(ids.users)}
    unknown = [u for u in wanted if u not in position]
    if unknown:
        examples = ", ".join(map(str, ids.users[:5]))
        raise ConfigError(f"unknown user id {unknown[0]!r} (the model knows {len(ids.users):,} users, e.g. {examples})")
    return np.asarray([position[u] for u in wanted], dtype=np.int64)


def category_mask(paths: np.ndarray, categories: Sequence[str] | str) -> np.ndarray:
    """Items whose category path starts with one of `categories`: a path prefix ("A > B") or a category
    name at any level ("B"), case-insensitive. A category that matches no item raises ConfigError."""
    wanted = [categories] if isinstance(categories, str) else list(categories)
    lowered = [str(p).lower() for p in paths]
    parts = [p.split(CATEGORY_SEP.lower()) for p in lowered]
    mask = np.zeros(len(paths), dtype=bool)
    for category in wanted:
        key = str(category).strip().lower()
        hits = np.asarray([p == key or p.startswith(key + CATEGORY_SEP.lower()) for p in lowered], dtype=bool)
        if not hits.any():  # a name: any level of the path
            hits = np.asarray([key in names for names in parts], dtype=bool)
        if not key or not hits.any():
            raise ConfigError(f"category {category!r} matches no item; give a path prefix or a category name")
        mask |= hits
    return mask
