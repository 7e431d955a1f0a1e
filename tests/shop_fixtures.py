"""Test data importable from any test: a tiny shop with a known right answer, and the shared real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zsrec.data.dataset import Dataset
from zsrec.data.splits import LAUNCH, SplitSettings

REPO = Path(__file__).resolve().parents[1]
AMAZON = REPO.parent / "shared" / "data" / "amazon-scientific"


def require_amazon() -> Path:
    """The Amazon Scientific folder, or skip the calling test with the reason."""
    if not (AMAZON / "Scientific.item.json").exists():
        pytest.skip(f"{AMAZON} not found: the real-data tests need ../shared/data/amazon-scientific beside the repo")
    return AMAZON


# (category, titles): camping buyers also buy sleeping bags; kitchen buyers also buy knives.
CATALOG = {
    "Outdoor > Tents": ["Trail tent 2 person", "Dome tent 4 person family camping", "Backpacking tent ultralight"],
    "Outdoor > Sleeping Bags": ["Down sleeping bag camping", "Mummy sleeping bag for backpacking tent trips"],
    "Outdoor > Stoves": ["Camping stove for backpacking", "Portable gas stove for tent camping"],
    "Kitchen > Pans": ["Nonstick frying pan", "Cast iron skillet pan", "Stainless steel saucepan"],
    "Kitchen > Knives": ["Chef knife stainless steel kitchen", "Bread knife serrated kitchen"],
    "Kitchen > Boards": ["Wooden cutting board kitchen", "Bamboo cutting board for knife work"],
}


def tiny_shop() -> Dataset:
    """12 items in 2 departments; 40 users, half campers and half cooks, each touching 3 categories."""
    rows = [(f"i{n}", t, c) for n, (c, t) in enumerate((c, t) for c, ts in CATALOG.items() for t in ts)]
    items = pd.DataFrame(rows, columns=["item_id", "title", "category"])
    items["description"] = ""
    items["brand"] = ""
    by_cat = {c: items.index[items["category"] == c].to_numpy() for c in CATALOG}
    rng = np.random.default_rng(0)
    inter = []
    for u in range(40):
        cats = list(CATALOG)[:3] if u % 2 == 0 else list(CATALOG)[3:]
        for c in cats:
            for i in rng.choice(by_cat[c], size=min(2, len(by_cat[c])), replace=False):
                inter.append((u, int(i), float(len(inter))))
    interactions = pd.DataFrame(inter, columns=["user", "item", "timestamp"]).sort_values(["user", "timestamp"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(40)]})
    users["profile"] = ["likes camping outdoors" if u % 2 == 0 else "loves cooking" for u in range(40)]
    return Dataset("tiny", items, users, interactions.reset_index(drop=True))


def write_tiny_shop(folder: Path) -> Path:
    """`tiny_shop()` written as a CSV dataset folder that the CLI reads (items.csv, interactions.csv)."""
    data = tiny_shop()
    data.items.to_csv(folder / "items.csv", index=False)
    inter = data.interactions.assign(
        user_id=data.users["user_id"].to_numpy()[data.interactions["user"]],
        item_id=data.items["item_id"].to_numpy()[data.interactions["item"]],
    )
    inter[["user_id", "item_id", "timestamp"]].to_csv(folder / "interactions.csv", index=False)
    return folder


DEPARTMENTS = ("Outdoor", "Kitchen", "Garden", "Office")


def write_department_shop(folder: Path) -> Path:
    """Four departments of three categories (Alpha, Beta, Gamma); each of 80 users buys three items in every
    category of one department. Holding out whole departments (level 1, the default validation level here)
    leaves nobody a history elsewhere; holding out level-2 categories does."""
    rng = np.random.default_rng(0)
    items, interactions = [], []
    for dept in DEPARTMENTS:
        for cat in ("Alpha", "Beta", "Gamma"):
            items += [(f"{dept}-{cat}-{j}", f"{dept} {cat} thing {j}", f"{dept} > {dept} {cat}") for j in range(5)]
    for u in range(80):
        dept = DEPARTMENTS[u % 4]
        for cat in ("Alpha", "Beta", "Gamma"):
            for j in rng.choice(5, size=3, replace=False):
                interactions.append((f"u{u}", f"{dept}-{cat}-{j}", len(interactions)))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(items, columns=["item_id", "title", "category"]).to_csv(folder / "items.csv", index=False)
    frame = pd.DataFrame(interactions, columns=["user_id", "item_id", "timestamp"])
    frame.to_csv(folder / "interactions.csv", index=False)
    return folder


LAUNCH_CATEGORIES = [f"Shop > C{c}" for c in range(6)]


def launch_shop(n_users: int = 60, per_user: int = 10) -> Dataset:
    """Six categories of five items; every user buys in two "home" categories, and the even users' last two
    purchases fall in C5 (which launches late in their lives)."""
    items = pd.DataFrame(
        [(f"i{c}-{j}", f"thing {c} {j} word{c}", LAUNCH_CATEGORIES[c]) for c in range(6) for j in range(5)],
        columns=["item_id", "title", "category"],
    )
    items["description"], items["brand"] = "", ""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        home = [u % 5, (u + 1) % 5]
        bought = [int(rng.choice(5)) + 5 * home[t % 2] for t in range(per_user)]
        if u % 2 == 0:
            bought[-2:] = [25 + int(rng.choice(5)), 25 + int(rng.choice(5))]
        rows += [(u, i, float(1000 * u + t)) for t, i in enumerate(bought)]
    interactions = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    return Dataset("launch-shop", items, users, interactions)


LAUNCH_SETTINGS = SplitSettings(protocol=LAUNCH, level=2, categories=("C5",), test_fraction=0.2, min_history=3)
