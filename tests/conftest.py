"""Fixtures shared across the suite (plain builders live in shop_fixtures.py, importable from any test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shop_fixtures import tiny_shop

from zsrec.data.dataset import Dataset


@pytest.fixture()
def shop() -> Dataset:
    return tiny_shop()


@pytest.fixture(scope="session")
def onnx_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder per test session for the ONNX exports of the real model (an export takes a minute)."""
    return tmp_path_factory.mktemp("onnx-models")
