"""Find a user or a category's items in a dataset by what a person types (an id, a category path or name)."""

from __future__ import annotations

import numpy as np

from zsrec.data.dataset import CATEGORY_SEP, Dataset
from zsrec.errors import ConfigError


def find_user(data: Dataset, user_id: str) -> int:
    """The index of `user_id`; an unknown id raises ConfigError with a few ids that exist."""
    ids = data.users["user_id"].astype(str)
    hits = np.flatnonzero(ids.to_numpy() == str(user_id))
    if len(hits) == 0:
        examples = ", ".join(ids.head(5).tolist())
        raise ConfigError(f"unknown user id {user_id!r} in {data.name} (ids look like: {examples})")
    return int(hits[0])


def items_in_category(data: Dataset, category: str) -> np.ndarray:
    """Items whose category path starts with `category`: a path prefix ("A > B") or a unique name ("B")."""
    name = category.strip()
    paths = data.items["category"].fillna("").astype(str)
    lowered = paths.str.lower()
    key = name.lower()
    mask = ((lowered == key) | lowered.str.startswith(key + CATEGORY_SEP.lower())).to_numpy()
    if name and mask.any():
        return np.flatnonzero(mask)
    prefixes = set()
    for level in range(1, data.category_depth() + 1):
        prefixes |= {p for p in data.category_at(level) if p and p.split(CATEGORY_SEP)[-1].lower() == key}
    if len(prefixes) > 1:
        raise ConfigError(f"category {category!r} is ambiguous: {sorted(prefixes)[:5]}; give the full path")
    if not prefixes:
        some = sorted({p for p in data.category_at(1) if p})[:6]
        raise ConfigError(
            f"category {category!r} not found in {data.name}; give a path prefix or a category name "
            f"(top-level categories include: {some})"
        )
    return items_in_category(data, prefixes.pop())
