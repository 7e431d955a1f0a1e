"""The ensemble: fusions, weights tuned on validation categories only (never the test ones), save and load."""

from __future__ import annotations

import doctest
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, SplitSettings, make_split
from zsrec.encoders import HashingEncoder
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings, evaluate_model
from zsrec.models import ensemble as ensemble_module
from zsrec.models import registry
from zsrec.models.base import Recommender
from zsrec.models.baselines import RandomRecommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.ensemble import EnsembleRecommender, EnsembleSettings, fusion_parts
from zsrec.models.registry import ModelContext, build_model, load_model

TEST_CATEGORIES = ("Sleeping Bags", "Knives")
SMALL = {"min_history": 2, "min_validation_users": 5, "n_folds": 3}


def split_of(data: Dataset) -> EvalSplit:
    return make_split(data, SplitSettings(level=2, categories=TEST_CATEGORIES, min_history=2))


@pytest.fixture(scope="module")
def split() -> EvalSplit:
    return split_of(tiny_shop())


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory) -> EmbeddingSource:
    return EmbeddingSource(HashingEncoder(dim=64), cache_dir=tmp_path_factory.mktemp("cache"))


def ensemble(members: tuple[str, ...], embeddings: EmbeddingSource, **kw: object) -> EnsembleRecommender:
    return registry.ensemble_model(EnsembleSettings(members=members, **SMALL | kw), embeddings=embeddings)  # type: ignore[arg-type]


def test_doctests_of_the_fusions() -> None:
    result = doctest.testmod(ensemble_module)
    assert result.attempted >= 2 and result.failed == 0


def test_score_fusion_standardises_each_user_and_ranks_put_ties_together() -> None:
    z = fusion_parts(np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]), "score")
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1)
    borda = fusion_parts(np.array([[5.0, 5.0, 1.0, -np.inf]]), "borda")
    assert borda[0, 0] == borda[0, 1] > borda[0, 2] > borda[0, 3]
    with pytest.raises(ConfigError, match="fusion must be one of"):
        fusion_parts(np.zeros((1, 2)), "max")


def test_weights_go_to_the_member_that_ranks_well(split: EvalSplit, embeddings: EmbeddingSource) -> None:
    model = ensemble(("random", "tfidf"), embeddings).fit(split.train)
    tuning = model.tuning_
    assert tuning["tuned"] and len(tuning["validation_folds"]) >= 1
    single = tuning["member_validation_ndcg@10"]
    assert single["tfidf"] > single["random"]
    weights = dict(zip(model.settings.members, model.weights_, strict=True))
    assert weights["tfidf"] > 0 and weights["tfidf"] >= weights["random"]
    assert tuning["validation_ndcg@10"] >= single["tfidf"]
    settings = EvalSettings(ks=(10,), n_bootstrap=0, per_category=False)
    fused = evaluate_model(model, split, settings)["new"]["ndcg@10"]
    alone = evaluate_model(registry.build_model("tfidf").fit(split.train), split, settings)["new"]["ndcg@10"]
    assert fused >= alone - 1e-9


class _Spy(Recommender):
    """A member that records every item it is asked to score (delegating to random scores)."""

    name = "spy"
    scored: list[int] = []

    def fit(self, data: Dataset) -> _Spy:
        self._inner = RandomRecommender().fit(data)
        self._remember(data)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        type(self).scored.extend(int(i) for i in items)
        return self._inner.score(users, items)


def test_tuning_never_sees_a_test_category_item(
    split: EvalSplit, embeddings: EmbeddingSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.SPECS, "spy", registry.ModelSpec("spy", lambda ctx: _Spy()))
    _Spy.scored = []
    model = ensemble(("spy", "tfidf"), embeddings).fit(split.train)
    assert _Spy.scored, "the spy member was never asked to score during tuning"
    assert not set(_Spy.scored) & set(split.new_items.tolist())
    folds = [set(f["categories"]) for f in model.tuning_["validation_folds"]]
    held_out = set(split.heldout_categories)
    assert folds and all(not f & held_out for f in folds)


def test_weights_do_not_change_when_the_test_interactions_do(embeddings: EmbeddingSource) -> None:
    data = tiny_shop()
    base = ensemble(("random", "tfidf", "zero-shot-mean"), embeddings).fit(split_of(data).train)
    # move every interaction in a test category to another (random) test-category item, and add more
    is_test = np.isin(data.category_at(2), [c for c in split_of(data).heldout_categories])
    test_items = np.flatnonzero(is_test)
    inter = data.interactions.copy()
    rows = is_test[inter["item"].to_numpy()]
    rng = np.random.default_rng(5)
    inter.loc[rows, "item"] = rng.choice(test_items, size=int(rows.sum()))
    extra = pd.DataFrame({"user": np.arange(10), "item": test_items[:1].repeat(10), "timestamp": 1e9})
    inter = pd.concat([inter, extra]).drop_duplicates(["user", "item"]).sort_values(["user", "timestamp"])
    changed = data.with_interactions(inter)
    other = ensemble(("random", "tfidf", "zero-shot-mean"), embeddings).fit(split_of(changed).train)
    targets = lambda d: [t.tolist() for t in split_of(d).targets]  # noqa: E731
    assert targets(changed) != targets(data)  # the test answers differ; the weights must not
    np.testing.assert_array_equal(base.weights_, other.weights_)
    assert base.tuning_["searches"] == other.tuning_["searches"]


def test_save_and_load_keep_members_weights_and_scores(split: EvalSplit, embeddings: EmbeddingSource, tmp_path) -> None:
    model = ensemble(("tfidf", "zero-shot-mean"), embeddings, fusions=("rrf",)).fit(split.train)
    model.save(tmp_path / "ens")
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert config["model"] == "ensemble" and config["tuning"]["fusion"] == "rrf"
    assert (tmp_path / "ens" / "members" / "0-tfidf" / "config.json").is_file()
    assert (tmp_path / "ens" / "members" / "1-zero-shot-mean" / "config.json").is_file()
    assert not list((tmp_path / "ens").rglob("*.pkl"))
    loaded = load_model(tmp_path / "ens")
    assert isinstance(loaded, EnsembleRecommender)
    users = split.test_users[:5]
    np.testing.assert_allclose(loaded.score(users, split.new_items), model.score(users, split.new_items))
    np.testing.assert_array_equal(loaded.weights_, model.weights_)


def test_registry_builds_ensembles_from_named_members(embeddings: EmbeddingSource) -> None:
    model = build_model("ensemble", ModelContext(embeddings=embeddings, members=("tfidf", "random")))
    assert model.settings.members == ("tfidf", "random")
    default = build_model("ensemble", ModelContext(embeddings=embeddings))
    assert default.settings.members == ensemble_module.DEFAULT_MEMBERS


def test_the_validation_level_reaches_the_ensemble_and_its_tuned_members(embeddings: EmbeddingSource) -> None:
    ctx = ModelContext(embeddings=embeddings, members=("zero-shot", "tfidf"), validation_level=2)
    model = build_model("ensemble", ctx)
    assert model.settings.level == 2
    assert model._build_member("zero-shot").settings.level == 2
    assert build_model("zero-shot", ModelContext(embeddings=embeddings)).settings.level is None  # its own default


def test_untuned_fallback_uses_equal_weights(split: EvalSplit, embeddings: EmbeddingSource) -> None:
    model = ensemble(("tfidf", "random"), embeddings, min_validation_users=10_000).fit(split.train)
    assert model.tuning_["tuned"] is False
    np.testing.assert_array_equal(model.weights_, [1.0, 1.0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"members": ("tfidf",)}, "at least two members"),
        ({"members": ("tfidf", "tfidf")}, "distinct"),
        ({"members": ("tfidf", "popularity-oracle")}, "cannot be an ensemble member"),
        ({"fusions": ("max",)}, "fusions must be"),
        ({"weight_grid": (0.0,)}, "weight_grid"),
    ],
)
def test_bad_settings_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EnsembleSettings(**values)


def test_a_fusion_is_kept_only_when_its_validation_gain_is_beyond_noise(
    split: EvalSplit, embeddings: EmbeddingSource
) -> None:
    free = ensemble(("tfidf", "random"), embeddings, gate_confidence=None).fit(split.train)
    gated = ensemble(("tfidf", "random"), embeddings).fit(split.train)
    gate = gated.tuning_["gate"]
    assert gate["confidence"] == 0.95 and gate["ci"][0] <= gate["gain"] <= gate["ci"][1]
    search = gated.tuning_["searches"][gated.tuning_["fusion"]]
    assert search["weights"] == free.tuning_["weights"]  # the same search; only the gate differs
    single = gated.tuning_["member_validation_ndcg@10"]
    if gate["kept"]:
        assert gate["ci"][0] > 0 and list(gated.weights_) == search["weights"]
    else:  # the best single member alone
        best = max(single, key=single.get)
        expected = [1.0 if m == best else 0.0 for m in gated.settings.members]
        assert list(gated.weights_) == expected


def test_the_gate_compares_against_the_best_single_member(embeddings: EmbeddingSource) -> None:
    # a fusion equal to its best member gains exactly 0 on every user: never kept
    model = EnsembleRecommender(EnsembleSettings(members=("tfidf", "random")), embeddings=embeddings)
    per_user = np.array([0.0, 0.5, 1.0])
    gate = model._gate({"per_user": per_user, "single_per_user": per_user})
    assert gate == {"kept": False, "gain": 0.0, "ci": [0.0, 0.0], "confidence": 0.95}
    gate = model._gate({"per_user": per_user + 0.1, "single_per_user": per_user})
    assert gate["kept"] and gate["gain"] == pytest.approx(0.1)


def test_the_gate_scores_each_fold_with_weights_searched_without_it(embeddings: EmbeddingSource) -> None:
    # Two validation folds of 100 users. Blending the members helps fold 0 (+0.05 per user) and hurts fold 1
    # (-0.01); alone, each member scores the same. Searched and scored on both folds, the blend wins (+0.02 a
    # user, every user counted where it was picked); searched on one fold and scored on the other, it never
    # gains: fold 0 alone picks the blend, which loses on fold 1; fold 1 alone keeps the single member.
    settings = EnsembleSettings(members=("tfidf", "random"), fusions=("score",))
    model = EnsembleRecommender(settings, embeddings=embeddings)
    folds = [SimpleNamespace(test_users=np.arange(100)) for _ in range(2)]
    base = np.random.default_rng(0).uniform(0.0, 0.2, size=(2, 100))

    def per_user(weights: np.ndarray) -> list[np.ndarray]:
        blend = bool(weights[0] > 0 and weights[1] > 0)
        return [base[0] + 0.05 * blend, base[1] - 0.01 * blend]

    in_sample = model._search(per_user, model._masks(folds, None))
    assert in_sample["weights"][0] > 0 and in_sample["weights"][1] > 0  # the search on all users blends
    held_out = model._out_of_fold(folds, {"score": per_user})  # type: ignore[arg-type]
    assert [c["weights"] for c in held_out["out_of_fold"]] == [[1.0, 0.0], in_sample["weights"]]
    diff = held_out["per_user"] - held_out["single_per_user"]
    np.testing.assert_allclose(diff, np.r_[np.zeros(100), np.full(100, -0.01)])
    gate = model._gate(held_out)
    assert not gate["kept"] and gate["gain"] == pytest.approx(-0.005)


def test_one_validation_fold_is_cross_fitted_on_two_halves_of_its_users(embeddings: EmbeddingSource) -> None:
    model = EnsembleRecommender(EnsembleSettings(members=("tfidf", "random")), embeddings=embeddings)
    folds = [SimpleNamespace(test_users=np.arange(51))]
    (first,), (second,) = model._masks(folds, 0), model._masks(folds, 1)
    assert not (first & second).any() and (first | second).all() and abs(int(first.sum()) - int(second.sum())) <= 1
