"""summarize(): plain numbers for `zsrec validate`, checked on a shop small enough to count by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from zsrec.data import load_dataset, summarize

WriteShop = Callable[..., Path]

ITEMS = [
    {"item_id": "tent", "title": "Tent", "category": "Outdoor > Camping > Tents"},
    {"item_id": "bag", "title": "Sleeping bag", "category": "Outdoor > Camping > Sleeping"},
    {"item_id": "rod", "title": "Fishing rod", "category": "Outdoor > Fishing"},
    {"item_id": "pot", "title": "Pot", "category": "Kitchen > Cookware"},
    {"item_id": "odd", "title": "Mystery box", "category": ""},
]
INTERACTIONS = [
    {"user_id": "ann", "item_id": "tent", "timestamp": 1},  # ann: Outdoor + Kitchen -> spans 2
    {"user_id": "ann", "item_id": "pot", "timestamp": 2},
    {"user_id": "bob", "item_id": "tent", "timestamp": 1},  # bob: Outdoor only (twice) -> spans 1
    {"user_id": "bob", "item_id": "rod", "timestamp": 2},
    {"user_id": "cat", "item_id": "odd", "timestamp": 1},  # cat: no category, single interaction
    {"user_id": "dan", "item_id": "bag", "timestamp": 1},  # dan: single interaction
    {"user_id": "dan", "item_id": "bag", "timestamp": 3},  # repeat, removed
]


def test_summary_counts_on_a_hand_counted_shop(write_shop: WriteShop) -> None:
    ds = load_dataset(write_shop(items=ITEMS, interactions=INTERACTIONS))
    summary = summarize(ds)
    assert summary["n_items"] == 5
    assert summary["n_users"] == 4
    assert summary["n_interactions"] == 6
    assert summary["category_depth"] == 3
    assert summary["categories_per_level"] == {1: 2, 2: 3, 3: 2}
    assert summary["items_without_category"] == 1
    assert summary["share_users_multi_category"] == pytest.approx(1 / 4)
    assert summary["share_users_single_interaction"] == pytest.approx(2 / 4)
    assert summary["has_timestamps"] is True
    assert summary["has_user_profiles"] is False
    assert summary["warnings"] == list(ds.warnings)
    assert any("removed 1 repeated" in w for w in summary["warnings"])
    json.dumps(summary)  # plain data: the CLI prints it as JSON
