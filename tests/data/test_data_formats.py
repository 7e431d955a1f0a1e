"""The same shop written as CSV, parquet and JSONL loads to the same Dataset; explicit paths work too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import zsrec.data as data_api
from zsrec.data import Dataset, load_dataset, load_tables

WriteShop = Callable[..., Path]
WriteRows = Callable[[Path, list[dict[str, object]]], Path]
ShopRows = Any  # conftest.ShopRows


def _typed_shop(shop: ShopRows) -> ShopRows:
    """Native JSON/parquet types where a shop would have them: numeric timestamps and ratings."""
    for n, row in enumerate(shop.interactions):
        row["timestamp"] = float(row["timestamp"]) + 0.25
        row["rating"] = [5, 3, None, 4][n]
        row["event"] = "purchase"
    for row, price in zip(shop.items, [19.5, None, 7.25], strict=True):
        row["price"] = price
    shop.users[0]["age"] = "45-54"
    shop.users[1]["age"] = None
    return shop


def _load(write_shop: WriteShop, shop: ShopRows, fmt: str) -> Dataset:
    return load_dataset(
        write_shop(items=shop.items, interactions=shop.interactions, users=shop.users, fmt=fmt, folder=fmt)
    )


def test_csv_parquet_and_jsonl_load_the_same_dataset(write_shop: WriteShop, shop: ShopRows) -> None:
    shop = _typed_shop(shop)
    loaded = {fmt: _load(write_shop, shop, fmt) for fmt in ("csv", "parquet", "jsonl")}
    reference = loaded["csv"]
    assert reference.items["price"].tolist() == ["19.5", "", "7.25"]
    assert reference.interactions["timestamp"].tolist() == [90.25, 100.25, 50.25, 60.25]
    assert reference.interactions["rating"].isna().sum() == 1
    for fmt in ("parquet", "jsonl"):
        other = loaded[fmt]
        pd.testing.assert_frame_equal(other.items, reference.items, check_dtype=True)
        pd.testing.assert_frame_equal(other.users, reference.users, check_dtype=True)
        pd.testing.assert_frame_equal(other.interactions, reference.interactions, check_dtype=True)
        assert [w.replace(fmt, "csv") for w in other.warnings] == list(reference.warnings)


def test_parquet_datetime_timestamps_become_seconds(
    write_shop: WriteShop, shop: ShopRows, tmp_path: Path
) -> None:
    root = write_shop()
    frame = pd.DataFrame(shop.interactions)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="D")  # day 100 after 1970-01-01, ...
    (root / "interactions.csv").unlink()
    frame.to_parquet(root / "interactions.parquet", index=False)
    ds = load_dataset(root)
    assert ds.interactions["timestamp"].tolist() == [90 * 86400.0, 100 * 86400.0, 50 * 86400.0, 60 * 86400.0]


def test_parquet_integer_ids_match_text_ids_in_other_files(write_shop: WriteShop, tmp_path: Path) -> None:
    root = write_shop(
        items=[
            {"item_id": "1", "title": "A", "category": "X"},
            {"item_id": "2", "title": "B", "category": "X"},
        ],
        interactions=[{"user_id": "9", "item_id": "2"}],
    )
    (root / "interactions.csv").unlink()
    pd.DataFrame({"user_id": [9, 9], "item_id": [2, 1]}).to_parquet(
        root / "interactions.parquet", index=False
    )
    ds = load_dataset(root)
    assert ds.users["user_id"].tolist() == ["9"]
    assert ds.interactions["item"].tolist() == [1, 0]


def test_utf8_byte_order_mark_is_not_part_of_the_first_column(write_shop: WriteShop) -> None:
    root = write_shop()
    path = root / "items.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_dataset(root).items["item_id"].tolist() == ["007", "a2", "a3"]


def test_load_tables_from_explicit_paths(
    write_shop: WriteShop, shop: ShopRows, write_rows: WriteRows
) -> None:
    root = write_shop()
    elsewhere = write_rows(root.parent / "people.jsonl", shop.users)
    ds = load_tables(root / "items.csv", root / "interactions.csv", elsewhere, name="explicit")
    assert ds.name == "explicit"
    assert ds.users["profile"].tolist() == ["likes camping", ""]


def test_folder_spec_name_and_package_exports(write_shop: WriteShop) -> None:
    root = write_shop()
    ds = load_dataset(str(root))
    assert ds.name == str(root)
    for name in ("load_dataset", "Dataset", "IdMap", "DataValidationError", "summarize"):
        assert hasattr(data_api, name), name
    assert issubclass(data_api.DataValidationError, ValueError)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_cells_are_stripped_and_missing_optional_columns_are_empty(
    write_shop: WriteShop, fmt: str
) -> None:
    items = [{"item_id": "i1", "title": "  Lamp  ", "category": " Home > Light "}]
    ds = load_dataset(write_shop(items=items, interactions=[{"user_id": "u", "item_id": "i1"}], fmt=fmt))
    assert ds.items.iloc[0].to_dict() == {
        "item_id": "i1",
        "title": "Lamp",
        "category": "Home > Light",
        "description": "",
        "brand": "",
    }
