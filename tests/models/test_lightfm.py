"""LightFM: new items scored from their text, refits that match a fit on all events, save/load, a clear error."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.errors import ConfigError
from zsrec.models.lightfm_model import LightFmRecommender, LightFmSettings

needs_lightfm = pytest.mark.skipif(
    importlib.util.find_spec("lightfm") is None,
    reason="lightfm is not installed (make setup builds it: pip install --no-build-isolation --no-deps lightfm==1.17)",
)
SMALL = LightFmSettings(no_components=16, epochs=30, min_df=1)


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags",), level=2, min_history=3))


@pytest.fixture(scope="module")
def fitted(split) -> LightFmRecommender:
    if importlib.util.find_spec("lightfm") is None:
        pytest.skip("lightfm is not installed")
    return LightFmRecommender(SMALL).fit(split.train)


@needs_lightfm
def test_campers_score_the_new_sleeping_bags_above_cooks(fitted, split) -> None:
    users = np.arange(split.train.n_users)  # campers (even) bought camping gear, cooks (odd) kitchen things
    scores = fitted.score(users, split.new_items).mean(axis=1)
    campers, cooks = scores[users % 2 == 0], scores[users % 2 == 1]
    assert campers.min() > cooks.max()


@needs_lightfm
def test_new_items_have_no_identity_feature(fitted, split) -> None:
    shape = tuple(fitted.feature_shape_)
    assert fitted.item_vectors_.shape == (split.train.n_items, SMALL.no_components)
    features = fitted._item_features(np.setdiff1d(np.arange(shape[0]), split.new_items))
    assert features.shape[1] == shape[1] + shape[0] - len(split.new_items)
    assert features[split.new_items][:, shape[1] :].nnz == 0
    np.testing.assert_allclose(np.asarray(features.sum(axis=1)).ravel(), 1.0, rtol=1e-5)


@needs_lightfm
def test_save_then_load_scores_the_same(fitted, split, tmp_path) -> None:
    fitted.save(tmp_path / "lfm")
    assert not list((tmp_path / "lfm").rglob("*.pkl"))
    loaded = LightFmRecommender.load(tmp_path / "lfm")
    assert loaded.settings == fitted.settings
    users = split.test_users
    np.testing.assert_array_equal(loaded.score(users, split.new_items), fitted.score(users, split.new_items))


@needs_lightfm
def test_partial_fit_gives_the_model_a_fit_on_every_event_gives(split) -> None:
    events = pd.DataFrame({"user": [0, 2, 4], "item": [3, 3, 4], "timestamp": [100.0, 101.0, 102.0]})
    updated = LightFmRecommender(SMALL).fit(split.train).partial_fit(events)
    inter = pd.concat([split.train.interactions, events], ignore_index=True)
    direct = LightFmRecommender(SMALL).fit(split.train.with_interactions(inter))
    users, items = np.arange(split.train.n_users), np.arange(split.train.n_items)
    np.testing.assert_allclose(updated.score(users, items), direct.score(users, items), rtol=1e-5, atol=1e-6)
    assert 3 in updated.histories_[0] and 4 in updated.histories_[4]


def test_a_missing_lightfm_is_one_clear_error(split, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "lightfm", None)  # makes `import lightfm` raise ImportError
    with pytest.raises(ConfigError, match="--no-build-isolation"):
        LightFmRecommender(SMALL).fit(split.train)


@pytest.mark.parametrize("bad", [{"no_components": 0}, {"loss": "hinge"}, {"learning_rate": 0.0}, {"epochs": 0}])
def test_bad_settings_name_the_field(bad) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        LightFmSettings(**bad)
