"""Models that take a live catalog (`AcceptsNewItems`): items added after fit get every part, as fitted items do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop

from zsrec.encoders import HashingEncoder
from zsrec.models.base import AcceptsNewItems, append_rows
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import load_model
from zsrec.models.zero_shot import ZeroShotRecommender, ZeroShotSettings, preset


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    embeddings = EmbeddingSource(HashingEncoder(dim=64), cache_dir=tmp_path / "cache")
    settings = preset("zero-shot-hybrid", ZeroShotSettings(encoder="hashing-64"))  # centred, all four parts
    ZeroShotRecommender(settings, embeddings=embeddings).fit(tiny_shop()).save(tmp_path / "model")
    return tmp_path / "model"


def test_a_posted_copy_of_an_item_scores_exactly_as_the_item_in_every_part(saved: Path) -> None:
    model = load_model(saved)
    assert isinstance(model, AcceptsNewItems)
    original = tiny_shop().items.iloc[[0]]
    (new,) = model.add_items(original.assign(item_id="copy"))
    users = np.arange(10)
    parts = model.components(users, np.asarray([0, new]))
    assert set(parts) == {"semantic", "lexical", "char", "category"}
    for name, values in parts.items():  # same text, same category: the fitted vocabularies and mean apply
        np.testing.assert_allclose(values[:, 0], values[:, 1], rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_new_category_gets_its_own_affinity(saved: Path) -> None:
    model = load_model(saved)
    items = pd.DataFrame(
        {
            "item_id": ["h1", "h2"],
            "title": ["Camping hammock", "Hammock straps"],
            "category": ["Outdoor > Hammocks"] * 2,
        }
    )
    new = model.add_items(items)
    assert model.category_index_[new[0]] == model.category_index_[new[1]] == len(model.category_vectors_) - 1
    campers, cooks = np.arange(0, 10, 2), np.arange(1, 10, 2)
    affinity = model.components(np.concatenate([campers, cooks]), new)["category"][:, 0]
    assert affinity[:5].min() > affinity[5:].max()  # campers' vectors lean towards the hammocks' centroid


def test_append_rows_grows_in_place_after_the_first_copy() -> None:
    class Owner:
        rows = np.arange(6, dtype=np.float32).reshape(3, 2)

    owner = Owner()
    append_rows(owner, "rows", np.ones((1, 2), dtype=np.float32))
    buffer = owner.rows.base
    append_rows(owner, "rows", np.full((2, 2), 7, dtype=np.float32))
    assert owner.rows.base is buffer and owner.rows.shape == (6, 2)
    np.testing.assert_array_equal(owner.rows[:, 0], [0, 2, 4, 1, 7, 7])
