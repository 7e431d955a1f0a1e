"""`build_dataset`: the common end of every loader and adapter (check, clean, assemble in-memory tables).

Its own module so that `loaders` can dispatch to the adapters and the adapters can finish through it, with
imports running one way only.
"""

from __future__ import annotations

from collections.abc import Sequence

from zsrec.data.cleaning import clean_dataset
from zsrec.data.dataset import Dataset
from zsrec.data.tables import Table
from zsrec.data.validation import check_tables


def build_dataset(
    name: str,
    items: Table,
    interactions: Table,
    users: Table | None = None,
    *,
    notes: Sequence[str] = (),
    category_separator: str | None = None,
) -> Dataset:
    """Check, clean and assemble in-memory tables: the common end of every loader and adapter."""
    checked = check_tables(items, interactions, users, category_separator=category_separator)
    return clean_dataset(name, checked, notes=notes)
