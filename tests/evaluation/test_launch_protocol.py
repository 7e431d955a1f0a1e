"""The launch protocol: time-ordered test windows, held-out categories absent from training, old and new targets,
whole-catalog candidates, and its metrics (new/old recall, new share, paired CIs)."""

from __future__ import annotations

import numpy as np
import pytest
from shop_fixtures import LAUNCH_SETTINGS as SETTINGS
from shop_fixtures import launch_shop, tiny_shop

from zsrec.data.splits import LAUNCH, SplitSettings, launch_split, make_split, window_rows
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings, PrecomputedScores, launch_metrics
from zsrec.evaluation.run import evaluate_models, resolve_pools
from zsrec.models.baselines import PopularityRecommender


def test_test_windows_are_the_last_share_of_each_user_in_time_order() -> None:
    data = launch_shop()
    shuffled = data.with_interactions(data.interactions.sample(frac=1.0, random_state=0))
    window = window_rows(shuffled, 0.2)
    inter = shuffled.interactions.assign(window=window)
    for _, rows in inter.groupby("user"):
        ordered = rows.sort_values("timestamp")
        assert ordered["window"].tolist() == [False] * 8 + [True] * 2  # 20% of 10, the latest ones
    assert window_rows(data.with_interactions(data.interactions.head(3)), 0.2).sum() == 1  # at least one


def test_no_test_window_or_held_out_interaction_reaches_training() -> None:
    data = launch_shop()
    split = make_split(data, SETTINGS)
    window = window_rows(data, 0.2)
    train_keys = set(zip(split.train.interactions["user"], split.train.interactions["timestamp"], strict=True))
    window_keys = set(zip(data.interactions["user"][window], data.interactions["timestamp"][window], strict=True))
    assert train_keys and not train_keys & window_keys
    categories = split.item_category[split.train.interactions["item"].to_numpy()]
    assert "Shop > C5" not in set(categories)
    assert set(split.new_items.tolist()) == set(range(25, 30))


def test_targets_hold_old_and_new_items_but_never_a_training_item() -> None:
    split = make_split(launch_shop(), SETTINGS)
    targets = np.concatenate(split.targets)
    is_new = np.isin(targets, split.new_items)
    assert is_new.any() and (~is_new).any()
    histories = split.train.histories()
    for user, items in zip(split.test_users, split.targets, strict=True):
        assert not set(items.tolist()) & set(histories[user].tolist())
        assert len(np.unique(histories[user])) >= SETTINGS.min_history


def test_too_few_interactions_per_user_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no test user.*min_history=9.*median of 10"):
        launch_split(launch_shop(), SplitSettings(protocol=LAUNCH, level=2, categories=("C5",), min_history=9))


def test_launch_pools_are_the_whole_catalog_alone() -> None:
    assert resolve_pools(None, LAUNCH) == ("launch",)
    with pytest.raises(ConfigError, match="drop --pool"):
        resolve_pools("new", LAUNCH)


def test_a_new_first_model_fills_the_top_with_new_items_and_loses_old_targets() -> None:
    split = make_split(launch_shop(), SETTINGS)
    n_items = split.train.n_items
    scores = np.tile(np.arange(n_items, dtype=float), (len(split.test_users), 1))  # C5 (items 25..29) first
    scores[:, 25:] += 1000
    model = PrecomputedScores(split.test_users, scores)
    model.histories_ = split.train.histories()  # what the launch pool masks
    result, per_user = launch_metrics(model, split, EvalSettings(ks=(10,), pools=("launch",)))
    assert 0.0 <= result["new_share@10"] <= 1.0
    assert result["new_share@10"] == pytest.approx(0.5)  # five new items in every top ten
    assert result["recall@10_new"] == 1.0 and 0 < result["n_users_new"] < result["n_users"]
    assert len(per_user) == len(split.test_users)
    popularity = PopularityRecommender().fit(split.train)
    baseline, _ = launch_metrics(popularity, split, EvalSettings(ks=(10,), pools=("launch",)))
    assert baseline["new_share@10"] == 0.0 and baseline["recall@10_new"] == 0.0


def test_every_model_gets_a_paired_ci_against_the_reference() -> None:
    split = make_split(launch_shop(), SETTINGS)
    runs = evaluate_models(split, ["random", "popularity"], EvalSettings(ks=(10,), pools=("launch",), n_bootstrap=50))
    paired = {run.name: run.metrics["launch"]["paired"] for run in runs}
    assert paired["random"]["reference"] == "random"  # no als: the first model
    assert paired["random"]["ndcg@10_gain"] == 0.0 and paired["random"]["ndcg@10_gain_ci"] == [0.0, 0.0]
    gain = paired["popularity"]["ndcg@10_gain"]
    low, high = paired["popularity"]["ndcg@10_gain_ci"]
    assert low <= gain <= high
    assert gain == pytest.approx(runs[1].metrics["launch"]["ndcg@10"] - runs[0].metrics["launch"]["ndcg@10"])


def test_the_tiny_shop_has_a_launch_split_too() -> None:
    split = make_split(tiny_shop(), SplitSettings(protocol=LAUNCH, level=2, min_history=3))
    assert len(split.test_users) > 0 and split.pools == ("launch",)

