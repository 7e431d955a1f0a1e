"""Structural checks: defects that make a dataset meaningless are fatal and name file, row, column and value.

Row-level blemishes (an empty title, a repeated purchase) are not checked here: `cleaning` fixes and
reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from zsrec.data.categories import category_paths
from zsrec.data.tables import Table, as_text
from zsrec.errors import DataValidationError

ITEM_COLUMNS = ("item_id", "title", "category")
INTERACTION_COLUMNS = ("user_id", "item_id")
OPTIONAL_INTERACTION_COLUMNS = ("timestamp", "rating", "event")
USER_COLUMNS = ("user_id",)

_TIMESTAMP_HELP = "expected an integer, a float or an ISO date such as 2024-05-01 or 2024-05-01T12:30:00"


@dataclass(frozen=True)
class CheckedTables:
    """Tables that passed every structural check, with ids as text and times and ratings parsed.

    Attributes:
        items: the items frame with `item_id` as text; other columns as read.
        interaction_users: user id (text) per interaction row, in file order.
        interaction_items: row position in `items` per interaction row.
        timestamps: float seconds per interaction row, or None when the source has no usable timestamp column.
        ratings: float per interaction row (NaN where empty), or None without a `rating` column.
        events: text per interaction row, or None without an `event` column.
        users: the users frame with `user_id` as text, or None without a users table.
        users_source: what the users table is called in messages ("" without one).
        notes: readable lines about what the checks decided (e.g. an all-empty timestamp column was ignored).
    """

    items: pd.DataFrame
    interaction_users: pd.Series
    interaction_items: np.ndarray
    timestamps: np.ndarray | None
    ratings: np.ndarray | None
    events: pd.Series | None
    users: pd.DataFrame | None
    users_source: str
    notes: tuple[str, ...] = ()


def check_tables(
    items: Table, interactions: Table, users: Table | None = None, *, category_separator: str | None = None
) -> CheckedTables:
    """Run every structural check; the first defect found raises DataValidationError.

    Args:
        category_separator: what separates category levels in the items' paths; None = " > " (and paths that
            look separated by "/", ">" or "|" instead are refused with a hint).
    """
    require_columns(items, ITEM_COLUMNS)
    require_columns(interactions, INTERACTION_COLUMNS)
    item_ids = require_ids(items, "item_id")
    require_unique(items, "item_id", item_ids)
    inter_users = require_ids(interactions, "user_id")
    inter_item_ids = require_ids(interactions, "item_id")
    item_positions = require_known(interactions, "item_id", inter_item_ids, item_ids, items.source)

    notes: tuple[str, ...] = ()
    kept = INTERACTION_COLUMNS + OPTIONAL_INTERACTION_COLUMNS
    ignored = [str(c) for c in interactions.frame.columns if c not in kept]
    if ignored:
        notes += (
            f"{interactions.source}: ignored column(s) {', '.join(ignored)}; kept only {', '.join(kept)}",
        )
    timestamps = None
    if "timestamp" in interactions.frame.columns:
        if _all_empty(interactions.frame["timestamp"]):
            notes += (
                f"{interactions.source}: the timestamp column is empty in every row; used file order instead",
            )
        else:
            timestamps = parse_timestamps(interactions, "timestamp")
    ratings = parse_numbers(interactions, "rating") if "rating" in interactions.frame.columns else None
    events = as_text(interactions.frame["event"]) if "event" in interactions.frame.columns else None

    users_frame = None
    if users is not None:
        require_columns(users, USER_COLUMNS)
        user_ids = require_ids(users, "user_id")
        require_unique(users, "user_id", user_ids)
        users_frame = users.frame.assign(user_id=user_ids)
    return CheckedTables(
        items=items.frame.assign(item_id=item_ids, category=category_paths(items, category_separator)),
        interaction_users=inter_users,
        interaction_items=item_positions,
        timestamps=timestamps,
        ratings=ratings,
        events=events,
        users=users_frame,
        users_source=users.source if users is not None else "",
        notes=notes,
    )


def require_columns(table: Table, required: Sequence[str]) -> None:
    """Every column in `required` is present."""
    missing = [c for c in required if c not in table.frame.columns]
    if missing:
        found = ", ".join(map(str, table.frame.columns)) or "(none)"
        raise DataValidationError(
            f"{table.source} is missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"found columns: {found}"
        )


def require_ids(table: Table, column: str) -> pd.Series:
    """The id column as text; an empty id is fatal because no row could refer to it."""
    ids = as_text(table.frame[column])
    empty = np.flatnonzero((ids == "").to_numpy())
    if len(empty):
        raise DataValidationError(
            f"{table.where(int(empty[0]), column)}: empty {column} "
            f"({len(empty):,} rows with an empty {column} in all)"
        )
    return ids


def require_unique(table: Table, column: str, ids: pd.Series) -> None:
    """No id appears twice; the message names both rows of the first duplicate."""
    repeated = ids.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    later = np.flatnonzero(ids.duplicated(keep="first").to_numpy())
    value = ids.iloc[later[0]]
    first = int(np.flatnonzero((ids == value).to_numpy())[0])
    n_ids = ids[repeated].nunique()
    raise DataValidationError(
        f"{table.source}: duplicate {column} {value!r} in {table.locate(first)} and "
        f"{table.locate(int(later[0]))} "
        f"({n_ids:,} {column} values appear more than once in all); each {column} must be unique"
    )


def require_known(
    table: Table, column: str, ids: pd.Series, known: pd.Series, known_source: str
) -> np.ndarray:
    """Positions of `ids` in `known`; an id missing from `known` is fatal (first offending row, count)."""
    positions = positions_in(known, ids)
    unknown = np.flatnonzero(positions < 0)
    if len(unknown):
        first = int(unknown[0])
        n_values = ids.iloc[unknown].nunique()
        raise DataValidationError(
            f"{table.where(first, column)}: {ids.iloc[first]!r} is not in {known_source} "
            f"({len(unknown):,} rows name {n_values:,} unknown {column} values in all)"
        )
    return positions.astype(np.int64)


def parse_timestamps(table: Table, column: str) -> np.ndarray:
    """Float seconds since 1970 from integers, floats, ISO dates/datetimes or datetime columns (naive = UTC).

    Numbers are taken as they are (seconds, or any monotone unit: only the order matters inside zsrec).
    An empty or unparsable value is fatal: the order of a user's history would otherwise be a guess.
    """
    values = table.frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        seconds = datetime_seconds(values)
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        seconds = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        text = as_text(values)
        seconds = np.array(pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
        need_date = np.isnan(seconds) & (text != "").to_numpy()
        if need_date.any():
            dates = pd.to_datetime(text[need_date], format="ISO8601", utc=True, errors="coerce")
            seconds[need_date] = datetime_seconds(dates)
    bad = np.flatnonzero(~np.isfinite(seconds))
    if len(bad):
        first = int(bad[0])
        raise DataValidationError(
            f"{table.where(first, column)}: cannot parse {as_text(values.iloc[[first]]).iloc[0]!r} "
            "as a timestamp "
            f"({_TIMESTAMP_HELP}); {len(bad):,} such rows in all"
        )
    return seconds


def parse_numbers(table: Table, column: str) -> np.ndarray:
    """A numeric column as float64; empty cells become NaN, any other non-number is fatal."""
    values = table.frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    text = as_text(values)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(numbers) & (text != "").to_numpy())
    if len(bad):
        first = int(bad[0])
        raise DataValidationError(
            f"{table.where(first, column)}: cannot parse {text.iloc[first]!r} as a number "
            f"({len(bad):,} such rows in all)"
        )
    return numbers


def positions_in(keys: pd.Series, values: pd.Series) -> np.ndarray:
    """Position of each of `values` in the unique `keys`, -1 where absent.

    One factorize over both is several times faster than `Index.get_indexer` on a million arrow strings.
    """
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    codes, _ = pd.factorize(
        pd.concat([keys.reset_index(drop=True), values.reset_index(drop=True)], ignore_index=True)
    )
    lookup = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    lookup[codes[: len(keys)]] = np.arange(len(keys), dtype=np.int64)
    return lookup[codes[len(keys) :]]


def datetime_seconds(values: pd.Series) -> np.ndarray:
    """Datetimes (naive taken as UTC) as float seconds since 1970; NaT becomes NaN."""
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return (values - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)


def _all_empty(values: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return bool(values.isna().all())
    return bool((as_text(values) == "").all())
