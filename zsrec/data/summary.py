"""`summarize(ds)`: the plain-data overview behind `zsrec validate` (sizes, category tree, user spread)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from zsrec.data.cleaning import TIMESTAMP_SOURCE_ATTR
from zsrec.data.dataset import Dataset


def summarize(ds: Dataset) -> dict[str, object]:
    """Counts and shares that tell whether a dataset suits the new-category protocol.

    Returns a JSON-ready dict:
        name, n_items, n_users, n_interactions;
        n_active_users: users with at least one interaction (the denominator of the shares below);
        category_depth; categories_per_level: {level: distinct non-empty category prefixes at that level};
        items_without_category;
        share_users_multi_category: share of active users whose items span >= 2 distinct level-1 categories
            (the users a leave-category-out split can test);
        share_users_single_interaction: share of active users with exactly one interaction;
        has_timestamps: whether times come from the data (False: file or list order stands in);
        has_user_profiles: whether any user has profile text;
        warnings: the cleaning report, one line each.

    >>> import pandas as pd
    >>> items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "category": ["X > Y", "Z"],
    ...                       "description": ["", ""], "brand": ["", ""]})
    >>> log = pd.DataFrame({"user": [0, 0], "item": [0, 1], "timestamp": [0.0, 1.0]})
    >>> s = summarize(Dataset("toy", items, pd.DataFrame({"user_id": ["u"], "profile": [""]}), log))
    >>> s["categories_per_level"], s["share_users_multi_category"]
    ({1: 2, 2: 1}, 1.0)
    """
    inter = ds.interactions
    users = inter["user"].to_numpy(dtype=np.int64)
    counts = np.bincount(users, minlength=ds.n_users)
    active = counts > 0
    n_active = int(active.sum())
    depth = ds.category_depth()
    per_level = {level: _distinct_nonempty(ds.category_at(level)) for level in range(1, depth + 1)}
    profiles = ds.users["profile"] if "profile" in ds.users.columns else pd.Series([], dtype=str)
    return {
        "name": ds.name,
        "n_items": ds.n_items,
        "n_users": ds.n_users,
        "n_interactions": len(inter),
        "n_active_users": n_active,
        "category_depth": depth,
        "categories_per_level": per_level,
        "items_without_category": int((ds.items["category"].fillna("") == "").sum()),
        "share_users_multi_category": _share(_users_spanning_categories(ds, users, minimum=2), n_active),
        "share_users_single_interaction": _share(int((counts == 1).sum()), n_active),
        "has_timestamps": inter.attrs.get(TIMESTAMP_SOURCE_ATTR, "data") == "data",
        "has_user_profiles": bool((profiles.fillna("").astype(str) != "").any()),
        "warnings": list(ds.warnings),
    }


def _distinct_nonempty(values: np.ndarray) -> int:
    return len({v for v in values if v})


def _users_spanning_categories(ds: Dataset, users: np.ndarray, *, minimum: int) -> int:
    """How many users interacted with items of at least `minimum` distinct non-empty level-1 categories."""
    codes, names = pd.factorize(ds.category_at(1))
    codes = np.where(np.asarray(names, dtype=object)[codes] == "", -1, codes)  # "" is "no category", not one
    item_codes = codes[ds.interactions["item"].to_numpy(dtype=np.int64)]
    pairs = pd.DataFrame({"user": users, "category": item_codes})
    pairs = pairs[pairs["category"] >= 0].drop_duplicates()
    per_user = pairs.groupby("user").size()
    return int((per_user >= minimum).sum())


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0
