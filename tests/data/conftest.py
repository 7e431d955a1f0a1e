"""Fixtures for the data-layer tests: tiny shops written to tmp_path in any of the three table formats."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

Rows = list[dict[str, object]]

ITEMS: Rows = [
    {
        "item_id": "007",
        "title": "Tent",
        "category": "Outdoor > Camping",
        "description": "A two-person tent",
        "brand": "Acme",
    },
    {
        "item_id": "a2",
        "title": "Sleeping bag",
        "category": "Outdoor > Camping > Sleeping",
        "description": "",
        "brand": "",
    },
    {
        "item_id": "a3",
        "title": "Kettle",
        "category": "Kitchen",
        "description": "Steel kettle",
        "brand": "Brew",
    },
]
INTERACTIONS: Rows = [
    {"user_id": "u1", "item_id": "007", "timestamp": 100},
    {"user_id": "u2", "item_id": "a3", "timestamp": 50},
    {"user_id": "u1", "item_id": "a2", "timestamp": 90},
    {"user_id": "u2", "item_id": "007", "timestamp": 60},
]
USERS: Rows = [
    {"user_id": "u1", "profile": "likes camping"},
    {"user_id": "u2", "profile": ""},
]


def write_rows(path: Path, rows: Rows) -> Path:
    """Write `rows` in the format named by the suffix of `path` (csv, parquet or jsonl)."""
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        raise ValueError(f"write_rows cannot write {path.suffix}")
    return path


WriteShop = Callable[..., Path]
WriteRows = Callable[[Path, Rows], Path]


@dataclass
class ShopRows:
    """Fresh, editable copies of the camping shop's tables."""

    items: Rows
    interactions: Rows
    users: Rows


@pytest.fixture
def shop() -> ShopRows:
    return ShopRows(copy.deepcopy(ITEMS), copy.deepcopy(INTERACTIONS), copy.deepcopy(USERS))


@pytest.fixture(name="write_rows")
def write_rows_fixture() -> WriteRows:
    return write_rows


@pytest.fixture
def write_shop(tmp_path: Path) -> WriteShop:
    """Write a dataset folder; tables default to the tiny camping shop, `users=None` leaves users out."""

    def write(
        items: Rows | None = None,
        interactions: Rows | None = None,
        users: Rows | None = None,
        *,
        fmt: str = "csv",
        folder: str = "shop",
    ) -> Path:
        root = tmp_path / folder
        root.mkdir(exist_ok=True)
        write_rows(root / f"items.{fmt}", ITEMS if items is None else items)
        write_rows(root / f"interactions.{fmt}", INTERACTIONS if interactions is None else interactions)
        if users is not None:
            write_rows(root / f"users.{fmt}", users)
        return root

    return write
