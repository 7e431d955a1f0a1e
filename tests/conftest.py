"""Fixtures shared across the suite (plain builders live in shop_fixtures.py, importable from any test)."""

from __future__ import annotations

import pytest
from shop_fixtures import tiny_shop

from zsrec.data.dataset import Dataset


@pytest.fixture()
def shop() -> Dataset:
    return tiny_shop()
