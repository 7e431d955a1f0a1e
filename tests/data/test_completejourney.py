"""The completejourney adapter: readable text rules on a tiny synthetic copy, and the packaged data (slow)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from zsrec.data import load_dataset, summarize
from zsrec.data.adapters.completejourney import household_profiles, load_completejourney, readable


def test_readable_expands_abbreviations_and_title_cases() -> None:
    assert readable("FRZN ICE") == "Frozen Ice"
    assert readable("ICE - CRUSHED/CUBED") == "Ice - Crushed/Cubed"
    assert readable("BREAD:ITALIAN/FRENCH") == "Bread: Italian/French"
    assert readable("MEN'S HAIR CARE") == "Men's Hair Care"
    assert readable("DRUG GM") == "Drug GM"
    assert readable("ELECT &PLUMBING") == "Electrical & Plumbing"
    assert readable(None) == ""


def test_household_profiles_read_like_text() -> None:
    demographics = pd.DataFrame(
        {
            "age": ["45-54", "25-34"],
            "income": ["50-74K", "Under 15K"],
            "home_ownership": ["Homeowner", None],
            "marital_status": ["Married", "Unmarried"],
            "household_size": ["2", "3"],
            "household_comp": ["2 Adults No Kids", "1 Adult Kids"],
            "kids_count": ["0", "2"],
        }
    )
    assert household_profiles(demographics).tolist() == [
        "age 45-54, income 50-74K, homeowner, married, 2 adults no kids",
        "age 25-34, income under 15K, unmarried, 1 adult with 2 kids",
    ]


@pytest.fixture
def tiny_journey(tmp_path: Path) -> Path:
    """Three products (one never bought), three transactions (one on a product missing from products)."""
    pd.DataFrame(
        {
            "product_id": [10, 20, 30],
            "manufacturer_id": [1, 1, 2],
            "department": ["GROCERY", "PRODUCE", "GROCERY"],
            "brand": ["National", "Private", "National"],
            "product_category": ["FRZN ICE", None, "SOFT DRINKS"],
            "product_type": ["ICE - CRUSHED/CUBED", "APPLES", None],
            "package_size": ["22 LB", None, "12 OZ"],
        }
    ).to_parquet(tmp_path / "products.parquet", index=False)
    pd.DataFrame(
        {
            "household_id": [7, 7, 8, 7],
            "product_id": [20, 10, 10, 99],
            "transaction_timestamp": pd.to_datetime(
                ["2017-01-02 10:00", "2017-01-01 09:00", "2017-01-03 00:00", "2017-01-04 00:00"]
            ),
        }
    ).to_parquet(tmp_path / "transactions.parquet", index=False)
    pd.DataFrame(
        {
            "household_id": [8],
            "age": ["65+"],
            "income": ["35-49K"],
            "home_ownership": ["Renter"],
            "marital_status": [None],
            "household_size": ["1"],
            "household_comp": ["1 Adult No Kids"],
            "kids_count": ["0"],
        }
    ).to_parquet(tmp_path / "demographics.parquet", index=False)
    return tmp_path


def test_tiny_journey_items_users_and_events(tiny_journey: Path) -> None:
    ds = load_completejourney(tiny_journey)
    items = ds.items.set_index("item_id")
    assert list(items.index) == ["10", "20"]  # 30 was never bought
    assert items.loc["10", "title"] == "Ice - Crushed/Cubed (Frozen Ice), 22 lb"
    assert items.loc["10", "category"] == "Grocery > Frozen Ice > Ice - Crushed/Cubed"
    assert items.loc["20", "category"] == "Produce"  # a missing level ends the path
    assert items.loc["20", "title"] == "Apples"
    assert items.loc["20", "brand"] == "Private"
    assert "Store brand" in items.loc["20", "description"]
    assert ds.users["user_id"].tolist() == ["8", "7"]  # demographics first, then by first appearance
    assert ds.users["profile"].tolist() == ["age 65+, income 35-49K, renter, 1 adult no kids", ""]
    # household 7 bought product 10 on Jan 1 before product 20 on Jan 2
    assert [list(map(int, h)) for h in ds.histories()] == [[0], [0, 1]]
    assert ds.interactions["timestamp"].iloc[1] == pd.Timestamp("2017-01-01 09:00").timestamp()
    assert set(ds.interactions["event"]) == {"purchase"}
    assert "dropped 1 transactions naming 1 product ids that products.parquet lacks" in ds.warnings
    assert "kept the 2 products that appear in transactions (of 3)" in ds.warnings


@pytest.mark.slow
def test_packaged_completejourney_loads_in_seconds() -> None:
    start = time.perf_counter()
    ds = load_dataset("completejourney")
    seconds = time.perf_counter() - start
    summary = summarize(ds)
    assert (ds.n_items, ds.n_users) == (68_492, 2_469)
    assert (
        len(ds.interactions) == 866_109
    )  # 1,469,307 rows less 4,836 on unknown products and 598,362 repeats
    assert any(w.startswith("removed 598,362 repeated (user, item) interactions") for w in ds.warnings)
    assert summary["categories_per_level"][1] == 30
    assert int((ds.users["profile"] != "").sum()) == 801
    assert ds.interactions["timestamp"].between(1.48e9, 1.52e9).all()  # 2017
    assert not ds.interactions.duplicated(["user", "item"]).any()
    assert seconds < 20, f"loading took {seconds:.1f} s"
