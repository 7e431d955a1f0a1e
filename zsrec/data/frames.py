"""`from_frames`: a Dataset from in-memory pandas (or polars) DataFrames, checked and cleaned as files are.

The frames go through the same `check_tables` and `clean_dataset` as a folder of files (`build_dataset`), so
a defect is refused, and a blemish cleaned and reported, exactly as it would be in `items.csv`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from zsrec.data.dataset import Dataset
from zsrec.data.loaders import build_dataset
from zsrec.data.tables import Table
from zsrec.errors import ConfigError, DataValidationError

#: zsrec's column names per table: what `columns=` may rename
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ("item_id", "title", "category", "description", "brand"),
    "interactions": ("user_id", "item_id", "timestamp", "rating", "event"),
    "users": ("user_id", "profile"),
}
KNOWN_COLUMNS = tuple(dict.fromkeys(c for columns in TABLE_COLUMNS.values() for c in columns))


def from_frames(
    items: Any,
    interactions: Any,
    users: Any = None,
    *,
    columns: Mapping[str, str] | None = None,
    name: str = "frames",
) -> Dataset:
    """Validate and clean in-memory tables into a Dataset, as `load_dataset` does with files.

    Args:
        items, interactions, users: pandas DataFrames, or polars DataFrames where polars is installed; the
            columns are those of the DATASET files (items: item_id, title, category, ...; interactions:
            user_id, item_id, optional timestamp, rating, event; users: user_id, optional profile, ...).
        columns: zsrec's column name -> the frames' name, e.g. `{"user_id": "customer_id"}`; it applies to
            every frame that has that zsrec column.
        name: what results and messages call the dataset.

    Raises:
        ConfigError: `columns` names an unknown zsrec column.
        DataValidationError: a mapped column is missing, or the data is structurally broken.
    """
    mapping = _check_mapping(columns or {})
    return build_dataset(
        name,
        _table(items, "items", mapping, name),
        _table(interactions, "interactions", mapping, name),
        _table(users, "users", mapping, name) if users is not None else None,
    )


def _check_mapping(columns: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(columns, Mapping):
        raise ConfigError(f"columns must be a dict of zsrec name -> frame column, got {type(columns).__name__}")
    for key, value in columns.items():
        if key not in KNOWN_COLUMNS:
            raise ConfigError(f"columns has an unknown zsrec column {key!r}; known: {', '.join(KNOWN_COLUMNS)}")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"columns[{key!r}] must be a column name, got {value!r}")
    return dict(columns)


def _table(frame: Any, table: str, mapping: dict[str, str], name: str) -> Table:
    """One frame as a Table, its columns renamed to zsrec's; messages call it e.g. "frames: items frame"."""
    frame = as_pandas(frame, table)
    if frame.index.name is not None or any(n is not None for n in frame.index.names):
        frame = frame.reset_index()  # a named index is data (e.g. item_id), as in parquet files
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    source = f"{name}: {table} frame"
    renames = {}
    for ours in TABLE_COLUMNS[table]:
        theirs = mapping.get(ours)
        if theirs is None or theirs == ours:
            continue
        if theirs not in frame.columns:
            raise DataValidationError(
                f"{source} has no column {theirs!r} (mapped to {ours!r} by columns=); "
                f"it has: {', '.join(frame.columns)}"
            )
        if ours in frame.columns:
            raise DataValidationError(f"{source} has both {ours!r} and {theirs!r}, which columns= maps to {ours!r}")
        renames[theirs] = ours
    return Table(frame.rename(columns=renames), source)


def as_pandas(frame: Any, what: str) -> pd.DataFrame:
    """`frame` as a pandas DataFrame: a polars one is converted (only where polars is installed)."""
    if isinstance(frame, pd.DataFrame):
        return frame
    try:
        import polars
    except ImportError:
        polars = None
    if polars is not None and isinstance(frame, polars.DataFrame):
        return frame.to_pandas()
    raise DataValidationError(f"{what} must be a pandas or polars DataFrame, got {type(frame).__name__}")
