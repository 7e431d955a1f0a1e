"""A two-department shop big enough to calibrate on, and the fast hashing encoder (no language model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zsrec.data.dataset import Dataset
from zsrec.encoders import HashingEncoder
from zsrec.models.embedding_source import EmbeddingSource

# Every title of a department shares its department's words, so a word-hashing encoder can link them.
DEPARTMENTS = {
    "Outdoor": (
        "camping outdoor",
        ["Tents", "Sleeping Bags", "Stoves", "Backpacks", "Lanterns", "Chairs", "Boots", "Jackets"],
    ),
    "Kitchen": ("cooking kitchen", ["Pans", "Knives", "Boards", "Kettles", "Mugs", "Bowls", "Spoons", "Blenders"]),
}
# Everyone also buys some groceries, in varying amounts: history length alone must not give adoption away.
GROCERY = ("food grocery", ["Bread", "Milk", "Fruit"])
VARIANTS = ("classic", "light", "pro")
N_USERS = 60


def two_department_shop(seed: int = 0) -> Dataset:
    """30 campers and 30 cooks; each buys 2 of the 3 items in 6 of the 8 categories of their own department,
    and 2 to 19 grocery items.

    User u is a camper when u is even, so every category is adopted by 22 or 23 of its department's 30 users
    and by nobody else. Timestamps are the event order.
    """
    rows = [
        (f"{dept} > {cat}", f"{cat.lower()} for {words} {variant}")
        for dept, (words, cats) in (*DEPARTMENTS.items(), ("Grocery", GROCERY))
        for cat in cats
        for variant in (VARIANTS if dept != "Grocery" else VARIANTS * 3)
    ]
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(len(rows))],
            "title": [t for _, t in rows],
            "category": [c for c, _ in rows],
        }
    )
    items["description"] = ""
    items["brand"] = ""
    rng = np.random.default_rng(seed)
    events = []
    for u in range(N_USERS):
        dept = "Outdoor" if u % 2 == 0 else "Kitchen"
        grocery = items.index[items["category"].str.startswith("Grocery")].to_numpy()
        for i in rng.choice(grocery, size=int(rng.integers(2, 20)), replace=False):  # groceries first
            events.append((u, int(i), float(len(events))))
        cats = DEPARTMENTS[dept][1]
        skipped = {cats[2 * ((u // 2) % 4)], cats[2 * ((u // 2) % 4) + 1]}  # each category: a quarter skips it
        for cat in [c for c in cats if c not in skipped]:
            idx = items.index[items["category"] == f"{dept} > {cat}"].to_numpy()
            for i in rng.choice(idx, size=2, replace=False):
                events.append((u, int(i), float(len(events))))
    inter = pd.DataFrame(events, columns=["user", "item", "timestamp"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(N_USERS)]})
    users["profile"] = ""
    return Dataset("two-departments", items, users, inter)


@pytest.fixture(scope="session")
def shop2() -> Dataset:
    return two_department_shop()


@pytest.fixture(scope="session")
def embeddings(tmp_path_factory) -> EmbeddingSource:
    return EmbeddingSource(HashingEncoder(dim=256), cache_dir=tmp_path_factory.mktemp("scenario-cache"))


def uneven_sizes_shop(seed: int = 0) -> Dataset:
    """The two-department shop with 1, 3, 9 or 27 unsold items added to each department category: adopters no
    longer grow with a category's item count, so adopters-per-item × items is far off, while the users'
    histories still say who adopts what."""
    shop = two_department_shop(seed)
    extra = [
        (f"{dept} > {cat}", f"{cat.lower()} for {words} edition {v}")
        for dept, (words, cats) in DEPARTMENTS.items()
        for j, cat in enumerate(cats)
        for v in range(3 ** (j % 4))
    ]
    added = pd.DataFrame(
        {
            "item_id": [f"x{n}" for n in range(len(extra))],
            "title": [t for _, t in extra],
            "category": [c for c, _ in extra],
            "description": "",
            "brand": "",
        }
    )
    items = pd.concat([shop.items, added], ignore_index=True)  # appended: interaction item indexes stay valid
    return Dataset("uneven-sizes", items, shop.users, shop.interactions)


@pytest.fixture(scope="session")
def uneven_shop() -> Dataset:
    return uneven_sizes_shop()


@pytest.fixture(scope="module")
def shop_dir(shop2: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-department shop written as a CSV dataset folder (what the CLI reads)."""
    folder = tmp_path_factory.mktemp("shop2")
    shop2.items.to_csv(folder / "items.csv", index=False)
    inter = shop2.interactions.copy()
    inter["user_id"] = shop2.users["user_id"].to_numpy()[inter["user"]]
    inter["item_id"] = shop2.items["item_id"].to_numpy()[inter["item"]]
    inter[["user_id", "item_id", "timestamp"]].to_csv(folder / "interactions.csv", index=False)
    return folder
