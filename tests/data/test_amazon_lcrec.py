"""The amazon-lcrec adapter: a tiny synthetic pair for the rules, and the real Scientific data if present."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from zsrec.data import DataValidationError, load_dataset, summarize
from zsrec.data.adapters.amazon_lcrec import category_paths

REPO_ROOT = Path(__file__).resolve().parents[2]
SCIENTIFIC = (REPO_ROOT / ".." / "shared" / "data" / "amazon-scientific").resolve()

ROOT = "Industrial & Scientific"


def _write_lcrec(folder: Path, items: dict, inter: dict, stem: str = "Toy") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.item.json").write_text(json.dumps(items), encoding="utf-8")
    (folder / f"{stem}.inter.json").write_text(json.dumps(inter), encoding="utf-8")
    return folder


TOY_ITEMS = {
    "0": {
        "title": "Tape",
        "description": "Duct tape",
        "brand": "3M",
        "categories": f"{ROOT},Tapes, Adhesives & Sealants,Adhesive Tapes",
    },
    "1": {
        "title": "Glue",
        "description": "",
        "brand": "",
        "categories": f"{ROOT},Tapes, Adhesives & Sealants,Adhesives & Glues",
    },
    "2": {
        "title": "Flask",
        "description": "Glass flask",
        "brand": "Pyrex",
        "categories": f"{ROOT},Lab Supplies",
    },
    "3": {"title": "Beaker", "description": "", "brand": "", "categories": ""},
}
TOY_INTER = {"0": [2, 0, 1], "1": [3, 0], "2": [1]}


def test_toy_pair_categories_positions_and_ids(tmp_path: Path) -> None:
    ds = load_dataset(f"amazon-lcrec:{_write_lcrec(tmp_path / 'toy', TOY_ITEMS, TOY_INTER)}")
    assert ds.items["item_id"].tolist() == ["0", "1", "2", "3"]
    assert ds.items["category"].tolist() == [
        "Tapes, Adhesives & Sealants > Adhesive Tapes",
        "Tapes, Adhesives & Sealants > Adhesives & Glues",
        "Lab Supplies",
        "",
    ]
    assert ds.users["user_id"].tolist() == ["0", "1", "2"]
    assert [list(map(int, h)) for h in ds.histories()] == [[2, 0, 1], [3, 0], [1]]
    # no timestamps in the format: file order (each user's chronological list) stands in for time
    assert ds.interactions["timestamp"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert summarize(ds)["has_timestamps"] is False
    assert f"dropped the root category level {ROOT!r} that every categorised item shares" in ds.warnings
    assert '1 items have no category; their category is ""' in ds.warnings
    assert "1 users have a single interaction (kept)" in ds.warnings


def test_a_root_not_shared_by_every_item_is_kept() -> None:
    import pandas as pd

    paths, root = category_paths(pd.Series(["A,B", "C,D", ""]))
    assert root == ""
    assert paths.tolist() == ["A > B", "C > D", ""]


def test_unknown_item_in_history_names_user_and_position(tmp_path: Path) -> None:
    folder = _write_lcrec(tmp_path / "bad", TOY_ITEMS, {"0": [0, 1], "7": [2, 99, 98]})
    with pytest.raises(DataValidationError) as info:
        load_dataset(f"amazon-lcrec:{folder}")
    message = str(info.value)
    assert "Toy.inter.json user '7', position 2, column 'item_id': '99' is not in" in message
    assert "Toy.item.json" in message and "2 rows name 2 unknown" in message


def test_history_that_is_not_a_list(tmp_path: Path) -> None:
    folder = _write_lcrec(tmp_path / "bad", TOY_ITEMS, {"0": 3})
    with pytest.raises(
        DataValidationError, match=r"Toy\.inter\.json, user '0': expected a list of item ids, got int"
    ):
        load_dataset(f"amazon-lcrec:{folder}")


def test_two_domains_in_one_folder_must_be_disambiguated(tmp_path: Path) -> None:
    folder = _write_lcrec(tmp_path / "two", TOY_ITEMS, TOY_INTER, stem="A")
    _write_lcrec(folder, TOY_ITEMS, TOY_INTER, stem="B")
    with pytest.raises(DataValidationError, match="holds 2 LC-Rec domains"):
        load_dataset(f"amazon-lcrec:{folder}")
    assert load_dataset(f"amazon-lcrec:{folder / 'B.item.json'}").n_items == 4


def test_broken_json_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_lcrec(tmp_path / "broken", TOY_ITEMS, TOY_INTER)
    (folder / "Toy.inter.json").write_text('{"0": [1, 2],\n "1": [3,', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"Toy\.inter\.json line 2: invalid JSON"):
        load_dataset(f"amazon-lcrec:{folder}")


@pytest.mark.shared_data
def test_amazon_scientific_counts() -> None:
    if not SCIENTIFIC.is_dir():
        pytest.skip(f"../shared/data/amazon-scientific not found: {SCIENTIFIC}")
    start = time.perf_counter()
    ds = load_dataset(f"amazon-lcrec:{SCIENTIFIC}")
    seconds = time.perf_counter() - start
    summary = summarize(ds)
    assert (ds.n_items, ds.n_users) == (4_344, 8_317)
    # 58,492 in the source; the LC-Rec export repeats no (user, item) pair, so cleaning removes none
    assert len(ds.interactions) == 58_492
    assert not any("repeated" in w for w in ds.warnings)
    assert summary["categories_per_level"][1] == 25
    assert not any(c.startswith(ROOT) for c in ds.items["category"])
    assert '131 items have no category; their category is ""' in ds.warnings
    assert summary["share_users_multi_category"] == pytest.approx(0.92, abs=0.01)  # SOURCE.md: 92%
    assert summary["share_users_single_interaction"] == 0.0  # 5-core
    assert ds.items["title"].str.len().min() > 0
    assert seconds < 10, f"loading took {seconds:.1f} s"
