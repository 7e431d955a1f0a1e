"""Category paths as read: the level separator (" > " unless told otherwise) and levels without a name.

A path with an empty level ("Lab >  > Glass") would make a nameless category, and a shop that separates its
levels with "/" would load as one level per whole path without a word; both are refused with a line that
says what to fix.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from zsrec.data.dataset import CATEGORY_SEP
from zsrec.data.tables import Table, as_text
from zsrec.errors import DataValidationError

#: separators a shop plausibly uses instead of " > " (checked only when no path holds " > ")
OTHER_SEPARATORS = ("/", ">", "|")


def category_paths(items: Table, separator: str | None = None) -> pd.Series:
    """The items' category paths with " > " between levels; DataValidationError for an empty level, or for
    paths that look separated by something else when no `separator` was given."""
    paths = as_text(items.frame["category"])
    if separator is None:
        _refuse_other_separator(items, paths)
    elif not separator.strip():
        raise DataValidationError(f"category separator must not be blank, got {separator!r}")
    sep = CATEGORY_SEP if separator is None else separator
    edge = sep.strip()  # "Lab >" once stripped: a level was meant to follow
    named = (paths != "").to_numpy()
    at_edges = (paths.str.startswith(edge) | paths.str.endswith(edge)).to_numpy(dtype=bool)
    # an empty level leaves two separators with only blanks between them: a vectorised test first, so that
    # the per-row split only runs on the (usually no) rows that may hold one
    maybe = paths.str.contains(re.escape(edge) + r"\s*" + re.escape(edge), regex=True).to_numpy(dtype=bool)
    gaps = np.zeros(len(paths), dtype=bool)
    if maybe.any():
        levels = paths[maybe].str.split(sep, regex=False)
        gaps[maybe] = levels.map(lambda parts: any(not part.strip() for part in parts)).to_numpy(dtype=bool)
    empty = gaps | (named & at_edges)
    if empty.any():
        position = int(empty.nonzero()[0][0])
        raise DataValidationError(
            f"{items.where(position, 'category')}: category path {paths.iloc[position]!r} has an empty level "
            f"(levels are separated by {sep!r}); name every level"
        )
    if sep == CATEGORY_SEP:
        return paths
    return paths.str.split(sep, regex=False).map(lambda levels: CATEGORY_SEP.join(lv.strip() for lv in levels))


def _refuse_other_separator(items: Table, paths: pd.Series) -> None:
    named = paths[paths != ""]
    if named.empty or named.str.contains(CATEGORY_SEP, regex=False).any():
        return
    for other in OTHER_SEPARATORS:
        share = float(named.str.contains(other, regex=False).mean())
        if share > 0.5:
            raise DataValidationError(
                f"{items.source}: {share:.0%} of the category paths contain {other!r} and none contains "
                f"{CATEGORY_SEP!r}, zsrec's level separator; pass --category-separator {other!r} to split them "
                f"into levels, or --category-separator {CATEGORY_SEP!r} to keep each path as one level"
            )
