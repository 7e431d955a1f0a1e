"""Cleaning: row-level blemishes are fixed by an explicit rule and reported as a warning line, never silently.

Rules, in order: item text is stripped; an empty title falls back to the description, else the brand; an
item with no text at all is dropped with its interactions; an empty category becomes ""; interactions are
sorted by user, time and file order; a repeated (user, item) pair keeps its first event; users get a profile
text (given, built from their attribute columns, or "").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from zsrec.data.dataset import Dataset
from zsrec.data.tables import as_text
from zsrec.data.validation import CheckedTables, positions_in
from zsrec.errors import DataValidationError

ITEM_TEXT_COLUMNS = ("title", "category", "description", "brand")
TITLE_FROM_DESCRIPTION_CHARS = 100
TIMESTAMP_SOURCE_ATTR = "timestamp_source"  # interactions.attrs key: "data" or "file order"


def clean_dataset(name: str, checked: CheckedTables, *, notes: Sequence[str] = ()) -> Dataset:
    """Apply every cleaning rule to structurally valid tables and assemble the Dataset.

    Args:
        name: the dataset's name in results (its spec).
        checked: the output of `check_tables`.
        notes: lines an adapter wants reported before the cleaning warnings (e.g. rows it dropped).
    """
    warnings = [*notes, *checked.notes]
    items, keep = clean_items(checked.items, warnings)
    interactions, user_ids = clean_interactions(checked, keep, warnings)
    users = build_users(user_ids, checked.users, checked.users_source, interactions, warnings)
    return Dataset(name=name, items=items, users=users, interactions=interactions, warnings=tuple(warnings))


def clean_items(frame: pd.DataFrame, warnings: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Text columns as stripped strings, title fallbacks, text-less items dropped.

    Returns the cleaned items (re-indexed) and the keep-flag per input row.
    """
    out = pd.DataFrame({"item_id": as_text(frame["item_id"])})
    for column in ITEM_TEXT_COLUMNS:
        out[column] = (
            as_text(frame[column]) if column in frame.columns else pd.Series("", index=frame.index, dtype=str)
        )
    for column in frame.columns:
        if column not in out.columns:
            out[str(column)] = as_text(frame[column])

    title, description, brand = out["title"], out["description"], out["brand"]
    no_title = (title == "").to_numpy()
    from_description = no_title & (description != "").to_numpy()
    from_brand = no_title & ~from_description & (brand != "").to_numpy()
    no_text = no_title & ~from_description & ~from_brand
    if from_description.any():
        out.loc[from_description, "title"] = description[from_description].map(_shorten)
    if from_brand.any():
        out.loc[from_brand, "title"] = brand[from_brand]
    n_fixed = int(from_description.sum() + from_brand.sum())
    if n_fixed:
        warnings.append(
            f"{n_fixed:,} items had an empty title; used description ({int(from_description.sum()):,}) "
            f"or brand ({int(from_brand.sum()):,}) instead"
        )
    keep = ~no_text
    if no_text.all():
        raise DataValidationError(
            f"no item has any text (title, description or brand are empty in all {len(out):,} rows): "
            "zsrec recommends new items from their text"
        )
    if no_text.any():
        warnings.append(
            f"dropped {int(no_text.sum()):,} items with no title, description or brand "
            f"(first: {out['item_id'][no_text].iloc[0]!r}) and their interactions"
        )
    out = out[keep].reset_index(drop=True)
    no_category = int((out["category"] == "").sum())
    if no_category:
        warnings.append(f'{no_category:,} items have no category; their category is ""')
    return out, keep


def _shorten(text: str, limit: int = TITLE_FROM_DESCRIPTION_CHARS) -> str:
    """`text` cut to about `limit` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-")
    return (cut or text[:limit]) + "…"


def clean_interactions(
    checked: CheckedTables, keep_items: np.ndarray, warnings: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    """Map ids to indexes, drop events on dropped items, sort, and keep each (user, item) pair's first event.

    Returns the interaction log and the user id of every user index (users-table order first, then users
    only seen in interactions in order of first appearance).
    """
    new_item_index = np.cumsum(keep_items, dtype=np.int64) - 1
    on_kept_item = keep_items[checked.interaction_items]
    if not on_kept_item.all():
        warnings.append(
            f"dropped {int((~on_kept_item).sum()):,} interactions with the dropped text-less items"
        )
    rows = np.flatnonzero(on_kept_item)

    kept_users = checked.interaction_users.iloc[rows].reset_index(drop=True)
    codes, seen_users = pd.factorize(kept_users)  # seen_users: order of first appearance
    if checked.users is not None:
        listed = checked.users["user_id"].reset_index(drop=True)
        extra = pd.Series(seen_users, dtype=str)
        extra = extra[positions_in(listed, extra) < 0]
        user_ids = pd.concat([listed, extra], ignore_index=True).astype(str)
        user_index = positions_in(user_ids, kept_users)
    else:
        user_ids = pd.Series(seen_users, dtype=str)
        user_index = codes
    has_time = checked.timestamps is not None
    timestamps = checked.timestamps[rows] if has_time else rows.astype(np.float64)
    columns: dict[str, object] = {
        "user": user_index.astype(np.int64),
        "item": new_item_index[checked.interaction_items[rows]],
        "timestamp": timestamps.astype(np.float64),
    }
    if checked.ratings is not None:
        columns["rating"] = checked.ratings[rows]
    if checked.events is not None:
        columns["event"] = checked.events.iloc[rows].reset_index(drop=True)
    log = pd.DataFrame(columns)

    order = np.lexsort((rows, log["timestamp"].to_numpy(), log["user"].to_numpy()))  # last key sorts first
    log = log.iloc[order].reset_index(drop=True)
    repeated = log.duplicated(["user", "item"], keep="first").to_numpy()
    if repeated.any():
        warnings.append(
            f"removed {int(repeated.sum()):,} repeated (user, item) interactions of {len(rows):,}, "
            "keeping each pair's first"
        )
        log = log[~repeated].reset_index(drop=True)
    if "event" in log.columns:
        log["event"] = log["event"].astype(str)
    log.attrs[TIMESTAMP_SOURCE_ATTR] = "data" if has_time else "file order"

    counts = np.bincount(log["user"].to_numpy(), minlength=len(user_ids))
    singles = int((counts == 1).sum())
    if singles:
        warnings.append(f"{singles:,} users have a single interaction (kept)")
    return log, user_ids


def build_users(
    user_ids: pd.Series,
    listed: pd.DataFrame | None,
    listed_source: str,
    interactions: pd.DataFrame,
    warnings: list[str],
) -> pd.DataFrame:
    """One row per user index: `user_id`, `profile` text and any attribute columns as text ("" if unknown)."""
    users = pd.DataFrame({"user_id": user_ids.reset_index(drop=True).astype(str)})
    if listed is None:
        users["profile"] = ""
        return users
    attributes = [c for c in listed.columns if c not in ("user_id", "profile")]
    listed_text = pd.DataFrame({str(c): as_text(listed[c]) for c in listed.columns if c != "user_id"})
    listed_text.index = pd.Index(listed["user_id"].astype(str))
    if "profile" not in listed_text.columns:
        listed_text["profile"] = profile_from_attributes(listed_text[attributes]) if attributes else ""
    aligned = listed_text.reindex(pd.Index(users["user_id"]))
    users["profile"] = aligned["profile"].fillna("").astype(str).to_numpy()
    for column in attributes:
        users[str(column)] = aligned[column].fillna("").astype(str).to_numpy()

    n_listed = len(listed)
    unlisted = len(user_ids) - n_listed
    if unlisted:
        warnings.append(
            f'{unlisted:,} users in interactions have no row in {listed_source}; their profile is ""'
        )
    active = np.bincount(interactions["user"].to_numpy(), minlength=len(user_ids))[:n_listed] > 0
    idle = int((~active).sum())
    if idle:
        warnings.append(f"{idle:,} users in {listed_source} have no interactions (kept)")
    return users


def profile_from_attributes(attributes: pd.DataFrame) -> pd.Series:
    """'age: 45-54, income: 50-74K' from attribute columns, skipping empty values."""
    names = [str(c).replace("_", " ") for c in attributes.columns]
    rows = attributes.to_numpy(dtype=object)
    text = [", ".join(f"{n}: {v}" for n, v in zip(names, row, strict=True) if v) for row in rows]
    return pd.Series(text, index=attributes.index, dtype=str)
