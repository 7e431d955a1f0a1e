"""The robustness evaluation: only held-out text is tampered with, ranks match the evaluator, attacks bite."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, SplitSettings, make_split
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import target_ranks
from zsrec.models.base import Recommender
from zsrec.models.baselines import TfidfRecommender
from zsrec.robustness import evaluate as robustness_evaluate
from zsrec.robustness.attacks import ATTACKS, AttackSettings, parse_attacks, perturb_items
from zsrec.robustness.evaluate import (
    RobustnessSettings,
    attack_split,
    new_pool_ranks,
    robustness_of,
    stuffing_success,
)
from zsrec.robustness.run import run_robustness

STUFF = AttackSettings(n_stuffed=2, n_keywords=4)


@pytest.fixture()
def split(shop: Dataset) -> EvalSplit:
    return make_split(shop, SplitSettings(level=2, categories=("Sleeping Bags", "Knives"), min_history=2))


def test_doctest_of_stuffing_success() -> None:
    result = doctest.testmod(robustness_evaluate)
    assert result.attempted >= 1 and result.failed == 0


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_touch_only_held_out_items(split: EvalSplit, attack: str) -> None:
    attacked = attack_split(split, attack, STUFF)
    before, after = split.train.items, attacked.split.train.items
    train_items = np.setdiff1d(np.arange(split.train.n_items), split.new_items)
    assert before.iloc[train_items].equals(after.iloc[train_items])
    assert attacked.split.train.interactions.equals(split.train.interactions)
    assert np.array_equal(attacked.split.new_items, split.new_items)
    assert set(attacked.changed) <= set(split.new_items)
    if attack in ("typos", "noise"):
        assert len(attacked.changed) == len(split.new_items)


def test_stuffing_appends_other_categories_words(split: EvalSplit) -> None:
    attacked = attack_split(split, "stuffing", STUFF)
    assert len(attacked.stuffed) == 2
    for item in attacked.stuffed:
        old = split.train.items["title"].iloc[item]
        new = attacked.split.train.items["title"].iloc[item]
        assert new.startswith(old) and len(new.split()) == len(old.split()) + 4
    knife = [i for i in attacked.stuffed if "knife" in split.train.items["title"].iloc[i].lower()][0]
    added = attacked.split.train.items["title"].iloc[knife].lower().split()[-4:]
    assert "camping" in added and "kitchen" not in added  # foreign words, not the item's own


def test_no_brand_removes_brand_field_and_mentions(split: EvalSplit) -> None:
    items = split.train.items.copy()
    items.loc[split.new_items[0], ["title", "brand"]] = ["Acme Down sleeping bag", "Acme"]
    out = perturb_items(items, split.new_items, "no-brand", AttackSettings())
    assert out["title"].iloc[split.new_items[0]] == "Down sleeping bag"
    assert out["brand"].iloc[split.new_items[0]] == ""


def test_stuffing_needs_categories_and_names_are_checked(split: EvalSplit) -> None:
    with pytest.raises(ConfigError, match="needs each item's category"):
        perturb_items(split.train.items, split.new_items, "stuffing", AttackSettings())
    with pytest.raises(ConfigError, match="unknown attack 'spam'"):
        parse_attacks("typos,spam")
    with pytest.raises(ConfigError, match="typo_rate must be in"):
        AttackSettings(typo_rate=2.0)
    with pytest.raises(ConfigError, match="attacks must be"):
        RobustnessSettings(attacks=("nope",))


def test_new_pool_ranks_equal_the_evaluators(split: EvalSplit) -> None:
    model = TfidfRecommender().fit(split.train)
    ranks, watched = new_pool_ranks(model, split, split.new_items[:2], seed=3)
    expected, _ = target_ranks(model, split, "new", seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(ranks, expected, strict=True))
    assert watched.shape == (len(split.test_users), 2)


def test_stuffing_lifts_irrelevant_items_for_tfidf(split: EvalSplit) -> None:
    settings = RobustnessSettings(attacks=("stuffing", "typos"), attack=STUFF, k=1, n_bootstrap=50)
    out = robustness_of(lambda d: TfidfRecommender().fit(d), split, settings)
    assert out["clean"]["ndcg@1"] == 1.0  # campers get sleeping bags, cooks get knives
    stuffing = out["attacks"]["stuffing"]
    assert stuffing["mean_rank_gain"] > 0
    assert stuffing["top1_share"] > stuffing["top1_share_clean"] == 0.0
    assert stuffing["ndcg@1_drop"] > 0
    lo, hi = stuffing["ndcg@1_drop_ci"]
    assert lo <= stuffing["ndcg@1_drop"] <= hi


class _Counting(Recommender):
    """Scores items by the length of their title; counts fits and `with_item_text` calls."""

    name = "counting"
    fits = 0
    retexts = 0

    def fit(self, data: Dataset) -> _Counting:
        type(self).fits += 1
        self._remember(data)
        self.lengths_ = data.items["title"].str.len().to_numpy(dtype=float)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.tile(self.lengths_[items], (len(users), 1))


class _Retextable(_Counting):
    def with_item_text(self, data: Dataset) -> _Retextable:
        type(self).retexts += 1
        copy = _Retextable()
        copy._remember(data)
        copy.lengths_ = data.items["title"].str.len().to_numpy(dtype=float)
        return copy


def test_models_refit_on_each_attacked_catalog_unless_they_can_reread_text(split: EvalSplit) -> None:
    settings = RobustnessSettings(attacks=("stuffing", "typos"), attack=STUFF, n_bootstrap=0)
    seen: list[Dataset] = []

    def fit(data: Dataset) -> Recommender:
        seen.append(data)
        return _Counting().fit(data)

    robustness_of(fit, split, settings)
    assert len(seen) == 3  # clean + two attacks
    assert seen[0] is split.train
    assert not seen[1].items["title"].equals(split.train.items["title"])
    _Retextable.fits = _Retextable.retexts = 0
    out = robustness_of(lambda d: _Retextable().fit(d), split, settings)
    assert (_Retextable.fits, _Retextable.retexts) == (1, 2)
    assert out["attacks"]["stuffing"]["mean_rank_gain"] > 0  # longer titles score higher here


def test_run_robustness_document(shop: Dataset) -> None:
    doc = run_robustness(
        shop,
        ["tfidf", "random"],
        SplitSettings(level=2, categories=("Sleeping Bags", "Knives"), min_history=2),
        RobustnessSettings(attack=STUFF, n_bootstrap=20),
    )
    assert set(doc["results"]) == {"tfidf", "random"}
    assert set(doc["results"]["tfidf"]["attacks"]) == set(ATTACKS)
    assert len(doc["stuffed_items"]) == 2
    assert doc["examples"]["stuffing"][0]["after"].startswith(doc["examples"]["stuffing"][0]["before"])
    with pytest.raises(ConfigError, match="leave-category-out"):
        run_robustness(shop, ["tfidf"], SplitSettings(protocol="leave-one-out"))
    with pytest.raises(ConfigError, match="popularity-oracle"):
        run_robustness(shop, ["popularity-oracle"], SplitSettings(level=2))


def test_stuffing_success_leaves_out_items_the_user_picked() -> None:
    clean = np.array([[20, 20]])
    after = np.array([[0, 0]])
    out = stuffing_success(clean, after, np.array([5, 6]), [np.array([5, 6])], 10)
    assert np.isnan(out["mean_rank_gain"]) and out["top10_share"] == 0.0
