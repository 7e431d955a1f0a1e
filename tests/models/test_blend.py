"""interleave and launch-blend: fixed shares of slots, the learned merge's no-harm rule, explanations, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import LAUNCH_SETTINGS as SETTINGS
from shop_fixtures import launch_shop

from zsrec.data.splits import make_split
from zsrec.encoders import HashingEncoder
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings, launch_metrics
from zsrec.models.als import AlsRecommender
from zsrec.models.blend import (
    NEVER,
    BlendSettings,
    InterleaveRecommender,
    InterleaveSettings,
    LaunchBlend,
    SimulationSettings,
    block_positions,
)
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import load_model

EVAL = EvalSettings(ks=(10,), pools=("launch",), n_bootstrap=0)


@pytest.fixture(scope="module")
def split():
    return make_split(launch_shop(), SETTINGS)


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    return EmbeddingSource(HashingEncoder(dim=64), cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def blend(split, embeddings) -> LaunchBlend:
    settings = BlendSettings(encoder="hashing", simulation=SimulationSettings(level=2))
    return LaunchBlend(settings, embeddings=embeddings).fit(split.train)


@pytest.mark.parametrize("share", [0.1, 0.2, 0.3, 0.5])
def test_a_share_of_every_ten_slots_goes_to_new_items(share) -> None:
    warm, new = block_positions(share, np.arange(40), np.arange(40))
    positions = np.concatenate([warm, new])
    first_ten = np.sort(positions)[:10]
    assert np.isin(new, first_ten).sum() == round(share * 10)
    assert len(np.unique(positions)) == 80  # one item per position
    assert np.all(np.diff(warm) > 0) and np.all(np.diff(new) > 0)  # each side keeps its order


def test_share_zero_puts_every_new_item_after_the_old_ones() -> None:
    warm, new = block_positions(0.0, np.arange(5), np.arange(3))
    assert new.min() > warm.max()


def test_a_fixed_interleave_share_is_the_new_share_of_the_top_ten(split, embeddings) -> None:
    settings = InterleaveSettings(encoder="hashing", share=0.2)
    model = InterleaveRecommender(settings, embeddings=embeddings).fit(split.train)
    result, _ = launch_metrics(model, split, EVAL)
    assert result["new_share@10"] == pytest.approx(0.2)
    none, _ = launch_metrics(model.with_share(0.0), split, EVAL)
    assert result["recall@10_new"] > none["recall@10_new"] == none["new_share@10"] == 0.0
    assert launch_metrics(model.with_share(0.4), split, EVAL)[0]["new_share@10"] == pytest.approx(0.4)


def test_interleave_chooses_its_share_from_the_grid_on_a_simulated_launch(split, embeddings) -> None:
    settings = InterleaveSettings(encoder="hashing", simulation=SimulationSettings(level=2))
    model = InterleaveRecommender(settings, embeddings=embeddings).fit(split.train)
    assert model.share_ in settings.shares
    assert set(model.choice_["validation_ndcg@10"]) == set(settings.shares)


def test_the_blend_does_no_harm_to_the_old_catalog(split, blend) -> None:
    als, _ = launch_metrics(AlsRecommender().fit(split.train), split, EVAL)
    mine, _ = launch_metrics(blend, split, EVAL)
    assert mine["ndcg@10"] >= 0.99 * als["ndcg@10"]
    learning = blend.learning_
    assert "validation_ndcg@10" in learning
    if "offset" in learning:  # the merge was kept: it beat ALS on the half it was not fitted on
        assert set(learning["fitted_on"]).isdisjoint(learning["validated_on"])
        assert learning["validation_ndcg@10"][repr(learning["offset"])] > learning["validation_ndcg@10"]["als"]


def test_the_blend_explains_why_a_new_item_earned_its_slot(split, blend) -> None:
    user = int(split.test_users[0])
    slots = blend.explain_slots(user, k=40)  # the whole unseen catalog: new items are in it
    assert [s["slot"] for s in slots] == list(range(1, len(slots) + 1))
    new = [s for s in slots if s["new"]]
    assert new and all(set(s["inputs"]) >= {"launch_score", "category_cosine"} for s in new)
    odds = [s["log_odds"] for s in slots]
    assert odds == sorted(odds, reverse=True)


def test_the_blend_saves_without_pickle_and_reloads_with_identical_scores(split, blend, tmp_path: Path) -> None:
    blend.save(tmp_path / "blend")
    assert (tmp_path / "blend" / "als" / "config.json").exists()
    assert (tmp_path / "blend" / "launch-ranker" / "config.json").exists()
    assert not list((tmp_path / "blend").rglob("*.pkl")) and not list((tmp_path / "blend").rglob("*.pickle"))
    loaded = load_model(tmp_path / "blend")
    assert isinstance(loaded, LaunchBlend)
    users, items = split.test_users[:10], np.arange(split.train.n_items)
    np.testing.assert_allclose(loaded.score(users, items), blend.score(users, items), rtol=1e-5, atol=1e-6)
    assert loaded.learning_ == blend.learning_


def test_interleave_saves_and_reloads_with_its_share(split, embeddings, tmp_path: Path) -> None:
    model = InterleaveRecommender(InterleaveSettings(encoder="hashing", share=0.3), embeddings=embeddings)
    model.fit(split.train).save(tmp_path / "interleave")
    loaded = load_model(tmp_path / "interleave")
    users, items = split.test_users[:10], np.arange(split.train.n_items)
    assert loaded.share_ == 0.3
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (lambda: BlendSettings(top=0), "top"),
        (lambda: BlendSettings(offsets=()), "offsets"),
        (lambda: InterleaveSettings(shares=(0.0, 1.5)), "shares"),
        (lambda: SimulationSettings(test_fraction=1.0), "test_fraction"),
    ],
)
def test_bad_settings_name_the_setting(settings, message) -> None:
    with pytest.raises(ConfigError, match=message):
        settings()


def test_never_keeps_every_new_item_below_the_old_ones(split, blend) -> None:
    merge = blend.merge
    merge.offset, merge.als_only = NEVER, False
    features = blend._features(split.test_users[:5])
    scores = merge.scores(features)
    allowed_new = np.where(features.new_allowed, scores, -np.inf).max(axis=1)
    allowed_old = np.where(features.warm_allowed, scores, np.inf).min(axis=1)
    assert np.all(allowed_new < allowed_old)


def test_events_reach_both_scorers_of_the_blend(split, embeddings) -> None:
    settings = BlendSettings(encoder="hashing", simulation=SimulationSettings(level=2))
    model = LaunchBlend(settings, embeddings=embeddings).fit(split.train)
    user, item = int(split.test_users[0]), int(split.new_items[0])
    before = model.als_.item_factors_[item].copy()
    model.partial_fit(pd.DataFrame({"user": [user], "item": [item]}))
    assert item in model.histories_[user].tolist() and model.launch_.histories_ is model.histories_
    assert model.launch_.revealed_counts_[item] == 1.0
    assert not np.array_equal(model.als_.item_factors_[item], before)  # ALS refitted with the purchase
    assert model.score(np.asarray([user]), np.asarray([item])).shape == (1, 1)
