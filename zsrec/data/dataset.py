"""The in-memory dataset every part of zsrec works on: a catalog, users and an interaction log on integer indexes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

CATEGORY_SEP = " > "


class IdMap:
    """Maps external string ids to row indexes 0..n-1 once, at the edge (lightfm's `Dataset` idea).

    >>> m = IdMap(["a", "b"])
    >>> m.index(["b", "a"]).tolist(), m.ids([1]).tolist()
    ([1, 0], ['b'])
    """

    def __init__(self, ids: Iterable[object]) -> None:
        self._ids = np.asarray([str(i) for i in ids], dtype=object)
        self._index = {k: i for i, k in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("IdMap ids must be unique")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._index

    def index(self, ids: Iterable[object]) -> np.ndarray:
        """Indexes of `ids`; raises KeyError naming the first few unknown ids."""
        keys = [str(i) for i in ids]
        missing = [k for k in keys if k not in self._index]
        if missing:
            raise KeyError(
                f"unknown ids: {missing[:5]}" + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            )
        return np.fromiter((self._index[k] for k in keys), dtype=np.int64, count=len(keys))

    def ids(self, idx: Iterable[int] | np.ndarray) -> np.ndarray:
        """External ids of the row indexes `idx`."""
        return self._ids[np.asarray(idx, dtype=np.int64)]

    @property
    def all_ids(self) -> np.ndarray:
        return self._ids


@dataclass(frozen=True)
class Dataset:
    """A shop's catalog, users and interaction log, with every id mapped to an integer index.

    Attributes:
        name: where it came from (a folder path or an adapter spec), reported in results.
        items: one row per item, row i is item index i. Columns: `item_id` (str), `title` (non-empty str),
            `category` (str path with " > " between levels; "" when unknown), `description` (str, may be ""),
            `brand` (str, may be ""), plus any extra attribute columns of the source.
        users: one row per user, row u is user index u. Columns: `user_id` (str), `profile` (str, may be ""),
            plus any attribute columns. Every user that appears in `interactions` has a row.
        interactions: columns `user` and `item` (int64 indexes) and `timestamp` (float64 seconds, or the
            position in the file when the source has no time), optional `rating` and `event`; sorted by
            user, then time, then file order. One row per (user, item) pair after cleaning.
        warnings: what cleaning changed, one readable line each (never silent).
    """

    name: str
    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def item_map(self) -> IdMap:
        return IdMap(self.items["item_id"])

    @property
    def user_map(self) -> IdMap:
        return IdMap(self.users["user_id"])

    def category_at(self, level: int) -> np.ndarray:
        """Each item's category path cut to `level` levels (level 1 = top); "" where the path is shallower.

        The full prefix is kept ("Lab > Glassware", not "Glassware") so equal names under different parents
        stay distinct.
        """
        if level < 1:
            raise ValueError(f"level must be >= 1, got {level}")
        parts = self.items["category"].fillna("").str.split(CATEGORY_SEP, regex=False)
        return np.asarray(
            [CATEGORY_SEP.join(p[:level]) if len(p) >= level and p[0] != "" else "" for p in parts],
            dtype=object,
        )

    def category_depth(self) -> int:
        """The deepest category level present in the catalog."""
        cats = self.items["category"].fillna("")
        return int(cats.map(lambda s: 0 if s == "" else s.count(CATEGORY_SEP) + 1).max() or 0)

    def histories(self, interactions: pd.DataFrame | None = None) -> list[np.ndarray]:
        """Item indexes per user index, in interaction order (from `interactions`, default this dataset's)."""
        inter = self.interactions if interactions is None else interactions
        return user_item_lists(inter, self.n_users)

    def with_interactions(self, interactions: pd.DataFrame) -> Dataset:
        """The same catalog and users with another interaction log (e.g. the training part of a split)."""
        return replace(self, interactions=interactions.reset_index(drop=True))

    def subset_items(self, keep: Sequence[bool] | np.ndarray, *, reason: str) -> Dataset:
        """Keep only the items where `keep` is true (and their interactions), re-indexing items.

        Users keep their indexes, so a user left with no interactions still has a row.
        """
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_items,):
            raise ValueError(f"keep must have one flag per item ({self.n_items}), got shape {keep.shape}")
        new_index = np.full(self.n_items, -1, dtype=np.int64)
        new_index[keep] = np.arange(int(keep.sum()))
        inter = self.interactions[keep[self.interactions["item"].to_numpy()]].copy()
        inter["item"] = new_index[inter["item"].to_numpy()]
        dropped = int((~keep).sum())
        warnings = self.warnings + ((f"dropped {dropped} items ({reason})",) if dropped else ())
        return replace(
            self,
            items=self.items[keep].reset_index(drop=True),
            interactions=inter.reset_index(drop=True),
            warnings=warnings,
        )


def user_item_lists(interactions: pd.DataFrame, n_users: int) -> list[np.ndarray]:
    """Split a sorted interaction log into one item-index array per user index (empty where none)."""
    users = interactions["user"].to_numpy()
    items = interactions["item"].to_numpy()
    out = [np.empty(0, dtype=np.int64) for _ in range(n_users)]
    if len(users) == 0:
        return out
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    for chunk_u, chunk_i in zip(np.split(users, bounds), np.split(items, bounds), strict=True):
        out[int(chunk_u[0])] = chunk_i.astype(np.int64)
    return out
