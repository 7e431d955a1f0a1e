"""Adapter for the LC-Rec JSON layout of Amazon review data (`<Domain>.item.json` + `<Domain>.inter.json`).

`item.json` is {item_idx: {title, description, brand, categories}} with `categories` a comma-joined path whose
level names themselves contain ", " (hence the `,(?! )` split); `inter.json` is {user_idx: [item_idx, ...]}
in chronological order without timestamps, so a history position stands in for time.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec.data.build import build_dataset
from zsrec.data.dataset import CATEGORY_SEP, Dataset
from zsrec.data.tables import Table, decode_utf8, parse_json
from zsrec.errors import DataValidationError

_LEVEL_SPLIT = re.compile(r",(?! )")
ITEM_SUFFIX = ".item.json"
INTER_SUFFIX = ".inter.json"


def load_amazon_lcrec(path: str | Path) -> Dataset:
    """Load the `*.item.json` / `*.inter.json` pair found in the folder `path` (or named by one of them)."""
    item_file, inter_file = find_lcrec_files(Path(path))
    raw_items = _read_json_object(item_file)
    raw_inter = _read_json_object(inter_file)

    items = _items_frame(raw_items, item_file)
    items["category"], root = category_paths(items["category"])
    notes = [f"dropped the root category level {root!r} that every categorised item shares"] if root else []

    user_keys = list(raw_inter)
    histories = []
    for user in user_keys:
        history = raw_inter[user]
        if not isinstance(history, list):
            raise DataValidationError(
                f"{inter_file}, user {user!r}: expected a list of item ids, got {type(history).__name__}"
            )
        histories.append(history)
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    owner = np.repeat(np.arange(len(user_keys)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    position = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    interactions = pd.DataFrame(
        {
            "user_id": pd.Series(np.asarray(user_keys, dtype=object)[owner], dtype=str),
            # no timestamp column: rows are in each user's chronological order, so file order is the order
            "item_id": pd.Series([str(i) for h in histories for i in h], dtype=str),
        }
    )

    def locate(row: int) -> str:
        return f"user {user_keys[owner[row]]!r}, position {position[row] + 1}"

    return build_dataset(
        f"amazon-lcrec:{path}",
        Table(items, str(item_file), locate=lambda row: f"item {items['item_id'].iloc[row]!r}"),
        Table(interactions, str(inter_file), locate=locate),
        notes=notes,
    )


def find_lcrec_files(path: Path) -> tuple[Path, Path]:
    """The (item, inter) file pair in folder `path`, or the pair of a given `X.item.json` / `X.inter.json`."""
    if path.is_file():
        for suffix in (ITEM_SUFFIX, INTER_SUFFIX):
            if path.name.endswith(suffix):
                stem = path.name[: -len(suffix)]
                return _pair(path.parent, stem)
        raise DataValidationError(f"{path}: expected a folder or a *{ITEM_SUFFIX} / *{INTER_SUFFIX} file")
    if not path.is_dir():
        raise DataValidationError(f"amazon-lcrec folder not found: {path}")
    stems = sorted(p.name[: -len(ITEM_SUFFIX)] for p in path.glob(f"*{ITEM_SUFFIX}"))
    if not stems:
        raise DataValidationError(f"{path} holds no *{ITEM_SUFFIX} file (the LC-Rec item table)")
    if len(stems) > 1:
        raise DataValidationError(
            f"{path} holds {len(stems)} LC-Rec domains ({', '.join(stems)}); name one file, e.g. "
            f"amazon-lcrec:{path / (stems[0] + ITEM_SUFFIX)}"
        )
    return _pair(path, stems[0])


def _pair(folder: Path, stem: str) -> tuple[Path, Path]:
    item_file, inter_file = folder / f"{stem}{ITEM_SUFFIX}", folder / f"{stem}{INTER_SUFFIX}"
    for file in (item_file, inter_file):
        if not file.is_file():
            raise DataValidationError(f"LC-Rec file not found: {file}")
    return item_file, inter_file


def _read_json_object(path: Path) -> dict[str, object]:
    text = decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise DataValidationError(f"{path} is empty")
    data = parse_json(text, path)
    if not isinstance(data, dict):
        raise DataValidationError(f"{path}: expected a JSON object keyed by id, got {type(data).__name__}")
    if not data:
        raise DataValidationError(f"{path} holds no entries")
    return data


def _items_frame(raw: dict[str, object], source: Path) -> pd.DataFrame:
    rows = []
    for key, record in raw.items():
        if not isinstance(record, dict):
            raise DataValidationError(
                f"{source}, item {key!r}: expected an object, got {type(record).__name__}"
            )
        rows.append(
            (key, *(_text(record.get(field)) for field in ("title", "description", "brand", "categories")))
        )
    return pd.DataFrame(rows, columns=["item_id", "title", "description", "brand", "category"], dtype=str)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # some LC-Rec dumps keep descriptions as lists of paragraphs
        return " ".join(_text(v) for v in value).strip()
    return str(value).strip()


def category_paths(raw: pd.Series) -> tuple[pd.Series, str]:
    """LC-Rec category strings -> " > " paths, dropping a first level that every categorised item shares.

    Returns the paths and the dropped root ("" when none was dropped). A shared root carries no information
    and would make every item one level-1 category.
    """
    levels = [[p.strip() for p in _LEVEL_SPLIT.split(s) if p.strip()] if s else [] for s in raw]
    firsts = {lv[0] for lv in levels if lv}
    root = ""
    if len(firsts) == 1 and sum(1 for lv in levels if lv) > 1:
        root = firsts.pop()
        levels = [lv[1:] for lv in levels]
    return pd.Series([CATEGORY_SEP.join(lv) for lv in levels], index=raw.index, dtype=str), root
