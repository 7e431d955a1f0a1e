"""Fatal structural defects: each raises DataValidationError naming file, row, column and value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from zsrec.data import DataValidationError, load_dataset

WriteShop = Callable[..., Path]
WriteRows = Callable[[Path, list[dict[str, object]]], Path]
ShopRows = Any  # conftest.ShopRows: editable copies of the camping shop's tables


def _error(spec: Path | str) -> str:
    with pytest.raises(DataValidationError) as info:
        load_dataset(spec)
    return str(info.value)


def test_missing_items_file_names_expected_files(write_shop: WriteShop) -> None:
    root = write_shop()
    (root / "items.csv").unlink()
    assert "has no items file; expected items.csv or items.parquet or items.jsonl" in _error(root)


def test_missing_interactions_file(write_shop: WriteShop) -> None:
    root = write_shop()
    (root / "interactions.csv").unlink()
    assert "has no interactions file" in _error(root)


def test_two_candidate_files_for_one_table(
    write_shop: WriteShop, write_rows: WriteRows, shop: ShopRows
) -> None:
    root = write_shop()
    write_rows(root / "items.parquet", shop.items)
    message = _error(root)
    assert "2 files for table 'items' (items.csv, items.parquet)" in message
    assert "keep exactly one" in message


@pytest.mark.parametrize("name", ["items.xlsx", "items.txt"])
def test_unknown_file_type(write_shop: WriteShop, name: str) -> None:
    root = write_shop()
    (root / "items.csv").rename(root / name)
    message = _error(root)
    assert name in message
    assert f"unsupported file type '{Path(name).suffix}'" in message


def test_zero_byte_file(write_shop: WriteShop) -> None:
    root = write_shop()
    (root / "interactions.csv").write_bytes(b"")
    message = _error(root)
    assert "interactions.csv is empty (0 bytes)" in message


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_header_only_file(write_shop: WriteShop, fmt: str) -> None:
    root = write_shop(fmt=fmt)
    if fmt == "csv":
        (root / "items.csv").write_text("item_id,title,category\n", encoding="utf-8")
    else:
        pd.DataFrame({"item_id": [], "title": [], "category": []}).to_parquet(root / "items.parquet")
    assert f"items.{fmt} has no data rows" in _error(root)


def test_missing_required_item_column_lists_found_columns(write_shop: WriteShop, shop: ShopRows) -> None:
    root = write_shop(items=[{k: v for k, v in row.items() if k != "category"} for row in shop.items])
    message = _error(root)
    assert "items.csv is missing required column(s) 'category'" in message
    assert "found columns: item_id, title, description, brand" in message


def test_missing_required_interaction_column(write_shop: WriteShop, shop: ShopRows) -> None:
    root = write_shop(
        interactions=[{"customer": r["user_id"], "item_id": r["item_id"]} for r in shop.interactions]
    )
    assert "interactions.csv is missing required column(s) 'user_id'" in _error(root)


def test_missing_required_user_column(write_shop: WriteShop, shop: ShopRows) -> None:
    root = write_shop(users=[{"uid": r["user_id"], "profile": r["profile"]} for r in shop.users])
    assert "users.csv is missing required column(s) 'user_id'" in _error(root)


def test_duplicate_item_ids_name_both_rows(write_shop: WriteShop, shop: ShopRows) -> None:
    items = [*shop.items, {**shop.items[0], "title": "Another tent"}]
    message = _error(write_shop(items=items))
    assert "items.csv: duplicate item_id '007' in row 1 and row 4" in message
    assert "1 item_id values appear more than once" in message


def test_duplicate_user_ids(write_shop: WriteShop, shop: ShopRows) -> None:
    message = _error(write_shop(users=[*shop.users, {"user_id": "u2", "profile": "again"}]))
    assert "users.csv: duplicate user_id 'u2' in row 2 and row 3" in message


def test_interactions_naming_unknown_items(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = [
        *shop.interactions,
        {"user_id": "u3", "item_id": "zz", "timestamp": 1},
        {"user_id": "u3", "item_id": "zz", "timestamp": 2},
        {"user_id": "u3", "item_id": "yy", "timestamp": 3},
    ]
    message = _error(write_shop(interactions=interactions))
    assert "interactions.csv row 5, column 'item_id': 'zz' is not in" in message
    assert "items.csv" in message
    assert "3 rows name 2 unknown item_id values" in message


def test_ids_are_compared_as_text_so_leading_zeros_matter(write_shop: WriteShop) -> None:
    message = _error(write_shop(interactions=[{"user_id": "u1", "item_id": "7", "timestamp": 1}]))
    assert "'7' is not in" in message


def test_empty_item_id(write_shop: WriteShop, shop: ShopRows) -> None:
    message = _error(write_shop(items=[shop.items[0], {**shop.items[1], "item_id": ""}]))
    assert "items.csv row 2, column 'item_id': empty item_id" in message


def test_unparsable_timestamp_names_row_and_value(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = shop.interactions
    interactions[1]["timestamp"] = "2024-05-01"  # ISO dates are fine ...
    interactions[2]["timestamp"] = "yesterday"  # ... words are not
    message = _error(write_shop(interactions=interactions))
    assert "interactions.csv row 3, column 'timestamp': cannot parse 'yesterday' as a timestamp" in message
    assert "1 such rows in all" in message


def test_partly_empty_timestamp_is_fatal(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = shop.interactions
    interactions[3]["timestamp"] = ""
    assert "row 4, column 'timestamp': cannot parse ''" in _error(write_shop(interactions=interactions))


def test_unparsable_rating(write_shop: WriteShop, shop: ShopRows) -> None:
    interactions = [{**r, "rating": "5"} for r in shop.interactions]
    interactions[2]["rating"] = "five"
    message = _error(write_shop(interactions=interactions))
    assert "interactions.csv row 3, column 'rating': cannot parse 'five' as a number" in message


def test_non_utf8_bytes_name_offset_and_line(write_shop: WriteShop) -> None:
    root = write_shop()
    good = (root / "items.csv").read_bytes()
    lines = good.split(b"\n")
    lines[2] = lines[2].replace(b"Sleeping", b"Sl\xe9eping")  # latin-1 "é"
    (root / "items.csv").write_bytes(b"\n".join(lines))
    message = _error(root)
    offset = b"\n".join(lines).index(b"\xe9")
    assert "items.csv is not valid UTF-8" in message
    assert f"byte 0xe9 at byte offset {offset} (line 3)" in message


def test_unreadable_parquet(write_shop: WriteShop) -> None:
    root = write_shop(fmt="parquet")
    (root / "items.parquet").write_bytes(b"this is not a parquet file")
    message = _error(root)
    assert "cannot read" in message
    assert "items.parquet as parquet" in message


def test_invalid_jsonl_line(write_shop: WriteShop) -> None:
    root = write_shop(fmt="jsonl")
    text = (root / "interactions.jsonl").read_text(encoding="utf-8").splitlines()
    text[1] = '{"user_id": "u2", "item_id": "a3",'
    (root / "interactions.jsonl").write_text("\n".join(text) + "\n", encoding="utf-8")
    message = _error(root)
    assert "interactions.jsonl line 2: invalid JSON" in message


def test_jsonl_line_that_is_not_an_object(write_shop: WriteShop) -> None:
    root = write_shop(fmt="jsonl")
    with (root / "items.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('["a4", "Mug"]\n')
    assert "items.jsonl line 4: expected a JSON object per line, got list" in _error(root)


def test_jsonl_errors_count_lines_including_blank_ones(write_shop: WriteShop) -> None:
    root = write_shop(fmt="jsonl")
    path = root / "interactions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(1, "")
    lines[3] = lines[3].replace('"a2"', '"nope"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "interactions.jsonl line 4, column 'item_id': 'nope' is not in" in _error(root)


def test_unknown_spec_prefix() -> None:
    message = _error("foo:bar")
    assert "unknown dataset spec 'foo:bar'" in message
    assert "expected a folder, amazon-lcrec:PATH or completejourney" in message


def test_folder_not_found(tmp_path: Path) -> None:
    assert f"dataset folder not found: {tmp_path / 'nowhere'}" in _error(tmp_path / "nowhere")


def test_spec_that_is_a_file(write_shop: WriteShop) -> None:
    root = write_shop()
    assert "is a file, not a dataset folder" in _error(root / "items.csv")


def test_amazon_spec_with_missing_folder(tmp_path: Path) -> None:
    assert f"amazon-lcrec folder not found: {tmp_path / 'x'}" in _error(f"amazon-lcrec:{tmp_path / 'x'}")
