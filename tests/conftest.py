"""Fixtures shared across the suite: a tiny shop with a known right answer, and paths to shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsrec.data.dataset import Dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
AMAZON = SHARED_DATA / "amazon-scientific"


def require_amazon() -> Path:
    if not (AMAZON / "Scientific.item.json").exists():
        pytest.skip(f"{AMAZON} not found: the real-data tests need ../shared/data/amazon-scientific beside the repo")
    return AMAZON


from shop_fixtures import tiny_shop  # noqa: E402


@pytest.fixture()
def shop() -> Dataset:
    return tiny_shop()
