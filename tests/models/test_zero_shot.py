"""Known answers for the zero-shot models on the tiny shop, with the fast hashing encoder."""

from __future__ import annotations

from dataclasses import replace as replace_settings

import numpy as np
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders import HashingEncoder
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings, evaluate_model
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.interests import interest_clusters, postprocess_embeddings
from zsrec.models.registry import ModelContext, build_model
from zsrec.models.zero_shot import ZeroShotRecommender, ZeroShotSettings


@pytest.fixture(scope="module")
def split():
    # two new categories: campers should get sleeping bags, cooks should get knives
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags", "Knives"), level=2, min_history=3))


@pytest.fixture(scope="module")
def ctx(split, tmp_path_factory):
    emb = EmbeddingSource(HashingEncoder(dim=256), cache_dir=tmp_path_factory.mktemp("cache"))
    return ModelContext(embeddings=emb, split=split)


def _new_category_of_top_item(model, split) -> list[str]:
    top = model.recommend(split.test_users, k=1, candidates=split.new_items).items[:, 0]
    return [split.train.items["category"][i] for i in top]


@pytest.mark.parametrize(
    "name", ["tfidf", "zero-shot-mean", "zero-shot-recency", "zero-shot-multi", "zero-shot-profile", "zero-shot-hybrid"]
)
def test_campers_get_sleeping_bags_and_cooks_get_knives(name, ctx, split) -> None:
    model = build_model(name, ctx).fit(split.train)
    got = _new_category_of_top_item(model, split)
    want = ["Outdoor > Sleeping Bags" if u % 2 == 0 else "Kitchen > Knives" for u in split.test_users]
    assert got == want


def test_zero_shot_beats_random_by_far_on_the_tiny_shop(ctx, split) -> None:
    settings = EvalSettings(ks=(1,), pools=("new",), n_bootstrap=0)
    random = evaluate_model(build_model("random", ctx).fit(split.train), split, settings)["new"]["ndcg@1"]
    zero_shot = evaluate_model(build_model("zero-shot-mean", ctx).fit(split.train), split, settings)["new"]["ndcg@1"]
    assert zero_shot == 1.0
    assert random < 0.8


def test_category_affinity_ranks_the_right_new_category_first(ctx, split) -> None:
    model = build_model("category-affinity", ctx).fit(split.train)
    assert _new_category_of_top_item(model, split)[:2] == ["Outdoor > Sleeping Bags", "Kitchen > Knives"]


def test_explanations_point_at_related_history_items(ctx, split) -> None:
    model = build_model("zero-shot-mean", ctx).fit(split.train)
    camper = int(split.test_users[0])
    bag = int(
        split.new_items[split.train.items["category"].to_numpy()[split.new_items] == "Outdoor > Sleeping Bags"][0]
    )
    reasons = model.explain(camper, np.array([bag]), top=2)[0]
    assert len(reasons) == 2
    assert all(split.train.items["category"][i].startswith("Outdoor") for i, _ in reasons)
    assert reasons[0][1] >= reasons[1][1]


def test_tuned_zero_shot_records_its_choice(ctx, split) -> None:
    model = build_model("zero-shot", ctx).fit(split.train)
    assert "best" in model.tuning_
    assert model.get_config()["tuning"] is model.tuning_


def test_two_separate_interests_become_two_clusters() -> None:
    a, b = np.eye(4)[0], np.eye(4)[1]
    history = np.stack([a, a * 0.9 + b * 0.1, b, b * 0.95 + a * 0.05])
    history /= np.linalg.norm(history, axis=1, keepdims=True)
    centroids, weights = interest_clusters(history.astype(np.float32), 4)
    assert len(centroids) >= 2
    assert np.isclose(weights.sum(), 1.0)
    # each interest has a centroid close to it, unlike the plain mean
    assert (centroids @ a).max() > 0.95 and (centroids @ b).max() > 0.95


@pytest.mark.parametrize("mode", ["none", "center", "whiten"])
def test_postprocess_returns_unit_rows(mode) -> None:
    x = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32) + 3.0
    out = postprocess_embeddings(x, mode, whiten_dims=4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    if mode != "none":  # the shared direction is gone
        assert abs(float((out.mean(axis=0) ** 2).sum())) < abs(
            float(((x / np.linalg.norm(x, axis=1, keepdims=True)).mean(axis=0) ** 2).sum())
        )


@pytest.mark.parametrize(
    "bad", [{"aggregation": "median"}, {"half_life": 0}, {"lexical_weight": -1}, {"semantic_weight": 0}]
)
def test_bad_settings_name_the_setting(bad) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad)) if "semantic" not in next(iter(bad)) else "at least one"):
        ZeroShotSettings(**bad)


def test_settings_round_trip_through_json_dict() -> None:
    s = ZeroShotSettings(lexical_weight=1.0, char_weight=0.5, aggregation="multi")
    assert ZeroShotSettings.from_dict(s.to_dict()) == s
    assert isinstance(ZeroShotRecommender(s).settings, ZeroShotSettings)


def test_tuning_can_switch_the_lexical_parts_off(split, tmp_path) -> None:
    from zsrec.models.tuned import TunedZeroShot, TuningSettings

    emb = EmbeddingSource(HashingEncoder(dim=256), cache_dir=tmp_path)
    settings = TuningSettings(min_validation_users=1, holdout_fraction=0.3, level=2, gate_confidence=None)
    model = TunedZeroShot(settings, embeddings=emb).fit(tiny_shop())
    assert model.tuning_["tuned"], model.tuning_.get("reason")
    grid = model.tuning_["grid"]
    # every lexical/char weight is searched, including 0 (a shop whose titles mislead word matching)
    assert {(row["lexical_weight"], row["char_weight"]) for row in grid} == {
        (lw, cw) for lw in settings.lexical_weights for cw in settings.char_weights
    }
    best = max(grid, key=lambda row: row["ndcg@10"])
    assert model.tuning_["validation_ndcg@10"] == best["ndcg@10"]
    # a grid without the lexical parts gives a model that never computes them
    off = TuningSettings(
        min_validation_users=1, holdout_fraction=0.3, level=2, lexical_weights=(0.0,), char_weights=(0.0,)
    )
    plain = TunedZeroShot(off, embeddings=emb).fit(tiny_shop())
    assert plain.tuning_["tuned"]
    assert set(plain.model_.components(split.test_users, split.new_items)) <= {"semantic", "category"}


def test_tuning_keeps_a_departure_from_the_full_fusion_only_when_the_gate_does(tmp_path) -> None:
    from zsrec.models.tuned import TunedZeroShot, TuningSettings

    emb = EmbeddingSource(HashingEncoder(dim=256), cache_dir=tmp_path)
    settings = TuningSettings(min_validation_users=1, holdout_fraction=0.3, level=2)
    tuning = TunedZeroShot(settings, embeddings=emb).fit(tiny_shop()).tuning_
    grid = tuning["grid"]
    assert [row["core"] for row in grid] == [
        row["lexical_weight"] == 1.0 and row["char_weight"] == 1.0 for row in grid
    ]
    keys = ("postprocess", "semantic_weight", "category_weight", "lexical_weight", "char_weight")
    best = max(grid, key=lambda row: row["ndcg@10"])
    core_best = max((row for row in grid if row["core"]), key=lambda row: row["ndcg@10"])
    expected = best if tuning["gate"]["kept"] else core_best
    assert {k: tuning["best"][k] for k in keys} == {k: expected[k] for k in keys}
    if not best["core"]:
        assert set(tuning["gate"]) >= {"gain", "ci", "out_of_fold"}
    # a gate that cannot fail keeps the grid's best; a grid with only the core points never needs the gate
    free = TunedZeroShot(replace_settings(settings, gate_confidence=None), embeddings=emb).fit(tiny_shop()).tuning_
    assert {k: free["best"][k] for k in keys} == {k: best[k] for k in keys}
    core_only = replace_settings(settings, lexical_weights=(1.0,), char_weights=(1.0,))
    plain = TunedZeroShot(core_only, embeddings=emb).fit(tiny_shop()).tuning_
    assert plain["gate"] == {"kept": True, "reason": "the best point is a full fusion"}
    assert {k: plain["best"][k] for k in keys} == {k: core_best[k] for k in keys}


def test_the_tuners_weighted_sum_is_the_chosen_models_score(split, tmp_path) -> None:
    from zsrec.models.tuned import _weighted_sum
    from zsrec.vectors import standardise

    emb = EmbeddingSource(HashingEncoder(dim=256), cache_dir=tmp_path)
    probe = ZeroShotSettings(lexical_weight=1.0, char_weight=1.0, category_weight=1.0)
    parts = ZeroShotRecommender(probe, embeddings=emb).fit(split.train).components(split.test_users, split.new_items)
    z = {name: standardise(x) for name, x in parts.items()}
    out, scratch = np.empty_like(z["semantic"]), np.empty_like(z["semantic"])
    for sw, lw, cw, kw in [(1.5, 0.0, 0.5, 1.0), (1.0, 1.0, 0.0, 0.0), (0.0, 0.5, 1.0, 0.5)]:
        config = ZeroShotSettings(semantic_weight=sw, lexical_weight=lw, char_weight=cw, category_weight=kw)
        _weighted_sum(z, config, out=out, scratch=scratch)
        model = ZeroShotRecommender(config, embeddings=emb).fit(split.train)
        np.testing.assert_array_equal(out, model.score(split.test_users, split.new_items))
