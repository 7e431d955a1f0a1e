"""One contract, checked on every recommender (after implicit's recommender_base_test)."""

from __future__ import annotations

import numpy as np
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders import HashingEncoder
from zsrec.errors import NotFittedError
from zsrec.models.base import HasMembers, Recommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import ModelContext, build_model, load_model, model_names


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags",), level=2, min_history=3))


@pytest.fixture(scope="module")
def ctx(split, tmp_path_factory):
    emb = EmbeddingSource(HashingEncoder(dim=64), cache_dir=tmp_path_factory.mktemp("cache"))
    return ModelContext(embeddings=emb, split=split)


@pytest.fixture(params=model_names())
def fitted(request, ctx, split) -> Recommender:
    return build_model(request.param, ctx).fit(split.train)


def test_every_model_refuses_to_score_before_fit(ctx) -> None:
    for name in model_names():
        with pytest.raises(NotFittedError):
            build_model(name, ctx).recommend(np.array([0]))


def test_score_has_one_row_per_user_and_one_column_per_item(fitted, split) -> None:
    scores = fitted.score(split.test_users[:3], split.new_items)
    assert scores.shape == (3, len(split.new_items))
    assert np.isfinite(scores).all()


def test_recommend_returns_sorted_unseen_items(fitted, split) -> None:
    users = split.test_users[:4]
    ranking = fitted.recommend(users, k=3)
    assert ranking.items.shape == (4, 3)
    assert (np.diff(ranking.scores, axis=1) <= 1e-6).all()
    for row, u in enumerate(users):
        assert not set(ranking.items[row]) & set(split.train.histories()[u].tolist())


def test_recommend_keeps_to_the_candidates(fitted, split) -> None:
    ranking = fitted.recommend(split.test_users[:2], k=2, candidates=split.new_items)
    assert set(ranking.items.ravel()) <= set(split.new_items.tolist())


def test_save_then_load_scores_the_same(fitted, split, tmp_path) -> None:
    fitted.save(tmp_path / "model")
    assert (tmp_path / "model" / "config.json").exists()
    assert not list((tmp_path / "model").rglob("*.pkl"))
    folder = tmp_path / "model"
    # a model made of other saved models loads them through the registry's loader
    if isinstance(fitted, HasMembers):
        loaded = type(fitted).load_with_members(folder, load_model)
    else:
        loaded = type(fitted).load(folder)
    users = split.test_users[:3]
    np.testing.assert_allclose(loaded.score(users, split.new_items), fitted.score(users, split.new_items), rtol=1e-5)
