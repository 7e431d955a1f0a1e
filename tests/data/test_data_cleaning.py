"""Cleaning rules: each blemish is fixed as documented and reported in Dataset.warnings with its count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from zsrec.data import load_dataset, summarize

WriteShop = Callable[..., Path]
ShopRows = Any  # conftest.ShopRows: editable copies of the camping shop's tables


def _item(item_id: str, title: str = "", description: str = "", brand: str = "", category: str = "C") -> dict:
    return {
        "item_id": item_id,
        "title": title,
        "category": category,
        "description": description,
        "brand": brand,
    }


def test_clean_shop_loads_without_warnings_and_keeps_leading_zeros(
    write_shop: WriteShop, shop: ShopRows
) -> None:
    ds = load_dataset(write_shop(users=shop.users))
    assert ds.warnings == ()
    assert ds.items["item_id"].tolist() == ["007", "a2", "a3"]
    assert ds.users["user_id"].tolist() == ["u1", "u2"]
    assert ds.users["profile"].tolist() == ["likes camping", ""]
    # u1: a2 (t=90) before 007 (t=100); u2: a3 (50) before 007 (60)
    assert ds.interactions[["user", "item"]].values.tolist() == [[0, 1], [0, 0], [1, 2], [1, 0]]
    assert ds.interactions["timestamp"].tolist() == [90.0, 100.0, 50.0, 60.0]


def test_dtypes_are_normalised(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = [{**r, "rating": "4.5", "event": "view"} for r in shop.interactions]
    interactions[0]["rating"] = ""
    ds = load_dataset(write_shop(interactions=interactions, users=shop.users))
    for column in ("item_id", "title", "category", "description", "brand"):
        assert pd.api.types.is_string_dtype(ds.items[column]), column
        assert not ds.items[column].isna().any(), column
    inter = ds.interactions
    assert inter["user"].dtype == np.int64 and inter["item"].dtype == np.int64
    assert inter["timestamp"].dtype == np.float64
    assert inter["rating"].dtype == np.float64
    assert int(inter["rating"].isna().sum()) == 1 and set(inter["rating"].dropna()) == {4.5}
    assert pd.api.types.is_string_dtype(inter["event"]) and set(inter["event"]) == {"view"}


def test_empty_title_falls_back_to_description_then_brand(write_shop: WriteShop, shop: ShopRows) -> None:
    long_description = "Stainless steel pot with a glass lid and two handles " * 4
    items = [
        _item("a", title="Tent"),
        _item("b", description="Short description"),
        _item("c", description=long_description),
        _item("d", brand="Acme"),
    ]
    interactions = [{"user_id": "u", "item_id": i, "timestamp": n} for n, i in enumerate("abcd")]
    ds = load_dataset(write_shop(items=items, interactions=interactions))
    titles = ds.items.set_index("item_id")["title"]
    assert titles["a"] == "Tent"
    assert titles["b"] == "Short description"
    assert titles["c"].endswith("…") and len(titles["c"]) <= 101
    assert long_description.startswith(titles["c"][:-1])
    assert titles["d"] == "Acme"
    assert "3 items had an empty title; used description (2) or brand (1) instead" in ds.warnings


def test_item_without_any_text_is_dropped_with_its_interactions(write_shop: WriteShop) -> None:
    items = [_item("a", title="Tent"), _item("ghost", category="Outdoor"), _item("b", title="Stove")]
    interactions = [
        {"user_id": "u1", "item_id": "ghost", "timestamp": 1},
        {"user_id": "u1", "item_id": "a", "timestamp": 2},
        {"user_id": "u2", "item_id": "ghost", "timestamp": 3},
        {"user_id": "u2", "item_id": "b", "timestamp": 4},
    ]
    ds = load_dataset(write_shop(items=items, interactions=interactions))
    assert ds.items["item_id"].tolist() == ["a", "b"]
    assert ds.items.set_index("item_id").index.get_loc("b") == 1  # later items are re-indexed
    assert ds.interactions["item"].tolist() == [0, 1]
    assert (
        "dropped 1 items with no title, description or brand (first: 'ghost') and their interactions"
        in ds.warnings
    )
    assert "dropped 2 interactions with the dropped text-less items" in ds.warnings


def test_repeated_user_item_pairs_keep_the_earliest(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = [
        {"user_id": "u1", "item_id": "a2", "timestamp": 30},  # repeat, but later in time
        {"user_id": "u1", "item_id": "a2", "timestamp": 10},
        {"user_id": "u1", "item_id": "007", "timestamp": 20},
        {"user_id": "u1", "item_id": "a2", "timestamp": 40},
        {"user_id": "u2", "item_id": "a3", "timestamp": 5},
        {"user_id": "u2", "item_id": "007", "timestamp": 6},
    ]
    ds = load_dataset(write_shop(interactions=interactions))
    assert ds.interactions.query("user == 0")["timestamp"].tolist() == [10.0, 20.0]
    assert not ds.interactions.duplicated(["user", "item"]).any()
    assert "removed 2 repeated (user, item) interactions of 6, keeping each pair's first" in ds.warnings


def test_ties_keep_file_order_and_users_follow_first_appearance(write_shop: WriteShop) -> None:
    interactions = [
        {"user_id": "zed", "item_id": "a3", "timestamp": 7},
        {"user_id": "amy", "item_id": "a2", "timestamp": 7},
        {"user_id": "zed", "item_id": "007", "timestamp": 7},
        {"user_id": "zed", "item_id": "a2", "timestamp": 1},
        {"user_id": "amy", "item_id": "007", "timestamp": 7},
    ]
    ds = load_dataset(write_shop(interactions=interactions))
    assert ds.users["user_id"].tolist() == ["zed", "amy"]
    assert [list(map(int, h)) for h in ds.histories()] == [[1, 2, 0], [1, 0]]


def test_single_interaction_users_are_kept_and_counted(write_shop: WriteShop) -> None:
    interactions = [
        {"user_id": "solo", "item_id": "a3", "timestamp": 1},
        {"user_id": "duo", "item_id": "a3", "timestamp": 1},
        {"user_id": "duo", "item_id": "a2", "timestamp": 2},
        {"user_id": "solo2", "item_id": "007", "timestamp": 3},
    ]
    ds = load_dataset(write_shop(interactions=interactions))
    assert ds.n_users == 3
    assert "2 users have a single interaction (kept)" in ds.warnings
    assert summarize(ds)["share_users_single_interaction"] == pytest.approx(2 / 3)


def test_empty_category_becomes_empty_string_with_a_warning(write_shop: WriteShop, shop: ShopRows) -> None:
    shop.items[1]["category"] = "  "
    shop.items[2]["category"] = ""
    ds = load_dataset(write_shop(items=shop.items))
    assert ds.items["category"].tolist() == ["Outdoor > Camping", "", ""]
    assert '2 items have no category; their category is ""' in ds.warnings
    assert ds.category_at(1).tolist() == ["Outdoor", "", ""]


def test_without_timestamp_column_file_order_is_the_order(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = [{"user_id": r["user_id"], "item_id": r["item_id"]} for r in shop.interactions]
    ds = load_dataset(write_shop(interactions=interactions))
    assert ds.interactions["timestamp"].tolist() == [
        0.0,
        2.0,
        1.0,
        3.0,
    ]  # file row positions, grouped by user
    assert [list(map(int, h)) for h in ds.histories()] == [[0, 1], [2, 0]]
    assert summarize(ds)["has_timestamps"] is False


def test_all_empty_timestamp_column_is_reported_and_ignored(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = [{**r, "timestamp": ""} for r in shop.interactions]
    ds = load_dataset(write_shop(interactions=interactions))
    assert any(
        "the timestamp column is empty in every row; used file order instead" in w for w in ds.warnings
    )
    assert ds.interactions["timestamp"].tolist() == [0.0, 2.0, 1.0, 3.0]


def test_iso_dates_integers_and_floats_all_parse(write_shop: WriteShop, shop: ShopRows) -> None:
    stamps = ["2024-05-02", "1714521600", "2024-05-01T12:00:00Z", "1714521600.5"]
    interactions = [{**r, "timestamp": t} for r, t in zip(shop.interactions, stamps, strict=True)]
    ds = load_dataset(write_shop(interactions=interactions))
    # 1714521600 is 2024-05-01T00:00:00Z
    assert ds.interactions["timestamp"].tolist() == [1714564800.0, 1714608000.0, 1714521600.0, 1714521600.5]


def test_users_missing_from_users_table_get_empty_profiles(write_shop: WriteShop, shop: ShopRows) -> None:
    users = [shop.users[0], {"user_id": "idle", "profile": "never buys"}]
    ds = load_dataset(write_shop(users=users))
    assert ds.users["user_id"].tolist() == ["u1", "idle", "u2"]
    assert ds.users["profile"].tolist() == ["likes camping", "never buys", ""]
    assert any(
        w.startswith("1 users in interactions have no row in") and "users.csv" in w for w in ds.warnings
    )
    assert any("1 users in" in w and "users.csv have no interactions (kept)" in w for w in ds.warnings)


def test_profile_is_built_from_attribute_columns_when_absent(write_shop: WriteShop) -> None:
    users = [
        {"user_id": "u1", "age": "45-54", "home_city": "Oslo"},
        {"user_id": "u2", "age": "", "home_city": "Rome"},
    ]
    ds = load_dataset(write_shop(users=users))
    assert ds.users["profile"].tolist() == ["age: 45-54, home city: Oslo", "home city: Rome"]
    assert ds.users["home_city"].tolist() == ["Oslo", "Rome"]
    assert summarize(ds)["has_user_profiles"] is True


def test_extra_item_columns_are_kept_as_text(write_shop: WriteShop, shop: ShopRows) -> None:
    for row, price in zip(shop.items, ["19.99", "", "5"], strict=True):
        row["price"] = price
    ds = load_dataset(write_shop(items=shop.items, fmt="csv"))
    assert ds.items["price"].tolist() == ["19.99", "", "5"]


def test_unused_interaction_columns_are_reported(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = [{**r, "quantity": "2", "store": "s1"} for r in shop.interactions]
    ds = load_dataset(write_shop(interactions=interactions))
    assert list(ds.interactions.columns) == ["user", "item", "timestamp"]
    message = "ignored column(s) quantity, store; kept only user_id, item_id, timestamp, rating, event"
    assert any(message in w for w in ds.warnings)
