"""partial_fit: a new category's first purchases reach the models (counts, ALS refits, histories)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.errors import DataValidationError
from zsrec.models.als import AlsRecommender, AlsSettings
from zsrec.models.baselines import PopularityOracle, PopularityRecommender, TfidfRecommender
from zsrec.models.bm25 import Bm25Recommender, Bm25Settings

SLEEPING_BAG = 3  # held out: no training interaction


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags",), level=2, min_history=3))


def events(users, item: int = SLEEPING_BAG) -> pd.DataFrame:
    users = list(users)
    return pd.DataFrame({"user": users, "item": [item] * len(users), "timestamp": np.arange(len(users)) + 1e6})


def test_popularity_ranks_a_new_item_first_after_purchases(split) -> None:
    model = PopularityRecommender().fit(split.train)
    before = model.item_counts_.copy()
    buyers = [*range(0, 40, 2), 1, 3, 5, 7, 9]  # 25: more than any training item has
    assert before.max() < len(buyers)
    model.partial_fit(events(buyers))
    assert model.item_counts_[SLEEPING_BAG] == before[SLEEPING_BAG] + len(buyers)
    ranking = model.recommend(np.array([11, 31]), k=1)  # cooks who did not buy it
    assert ranking.items[:, 0].tolist() == [SLEEPING_BAG, SLEEPING_BAG]
    # the buyers have it in their history now, so it is masked for them
    assert SLEEPING_BAG not in model.recommend(np.array([0]), k=5).items[0]


def test_the_oracle_only_extends_histories(split) -> None:
    counts = np.arange(split.train.n_items, dtype=np.float64)
    model = PopularityOracle(test_counts=counts).fit(split.train)
    model.partial_fit(events([1]))
    np.testing.assert_array_equal(model.item_counts_, counts)
    assert model.histories_[1][-1] == SLEEPING_BAG


def test_als_ranks_a_new_item_high_for_users_like_its_buyers(split) -> None:
    model = AlsRecommender(AlsSettings(factors=8, iterations=20)).fit(split.train)
    buyers = [0, 2, 4, 6, 8, 10]
    model.partial_fit(events(buyers))
    campers = np.array([u for u in range(12, 40, 2)])  # campers who did not buy it
    ranking = model.recommend(campers, k=split.train.n_items)
    ranks = np.array([list(row).index(SLEEPING_BAG) for row in ranking.items])
    unseen = ranking.items.shape[1] - np.array([len(model.histories_[u]) for u in campers])
    assert (ranks / unseen).mean() < 0.3  # random would put it mid-list (0.5)
    cooks = np.array([u for u in range(1, 40, 2)])
    assert model.score(campers, [SLEEPING_BAG]).mean() > model.score(cooks, [SLEEPING_BAG]).mean()


def test_als_refit_equals_a_fit_on_all_interactions(split) -> None:
    new = events([0, 2, 4])
    updated = AlsRecommender(AlsSettings(factors=8)).fit(split.train).partial_fit(new)
    all_inter = pd.concat([split.train.interactions, new], ignore_index=True)
    direct = AlsRecommender(AlsSettings(factors=8)).fit(split.train.with_interactions(all_inter))
    users, items = np.arange(split.train.n_users), np.arange(split.train.n_items)
    np.testing.assert_allclose(updated.score(users, items), direct.score(users, items), rtol=1e-4, atol=1e-5)


def test_als_refits_after_load_from_the_saved_histories(split, tmp_path) -> None:
    model = AlsRecommender(AlsSettings(factors=8)).fit(split.train)
    model.save(tmp_path / "als")
    loaded = AlsRecommender.load(tmp_path / "als").partial_fit(events([0, 2]))
    model.partial_fit(events([0, 2]))
    users = np.arange(split.train.n_users)
    np.testing.assert_allclose(loaded.score(users, [3, 4]), model.score(users, [3, 4]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [TfidfRecommender, lambda: Bm25Recommender(Bm25Settings(min_df=1))])
def test_default_partial_fit_extends_histories_in_time_order(split, make) -> None:
    model = make().fit(split.train)
    before = [h.copy() for h in model.histories_]
    already = int(before[0][0])
    new = pd.DataFrame({"user": [0, 0, 0, 5], "item": [4, already, SLEEPING_BAG, 4], "timestamp": [3.0, 1.0, 2.0, 1.0]})
    model.partial_fit(new)
    assert model.histories_[0].tolist() == [*before[0].tolist(), SLEEPING_BAG, 4]  # by timestamp, no repeat
    assert model.histories_[5].tolist() == [*before[5].tolist(), 4]
    unchanged = [u for u in range(len(before)) if u not in (0, 5)]
    assert all(np.array_equal(model.histories_[u], before[u]) for u in unchanged)
    # shapes and seen-masking still hold; user 0's profile now reads the sleeping bags' text
    users = np.array([0, 5, 7])
    assert model.score(users, split.new_items).shape == (3, len(split.new_items))
    ranking = model.recommend(users, k=4)
    assert ranking.items.shape == (3, 4)
    for row, u in enumerate(users):
        assert not set(ranking.items[row].tolist()) & set(model.histories_[u].tolist())


def test_history_text_changes_the_scores(split) -> None:
    model = Bm25Recommender(Bm25Settings(min_df=1)).fit(split.train)
    cook = 1
    before = model.score(np.array([cook]), split.new_items)
    model.partial_fit(events([cook], item=5))  # a cook buys a camping stove
    assert (model.score(np.array([cook]), split.new_items) > before).all()


@pytest.mark.parametrize(
    "bad",
    [
        pd.DataFrame({"user": [0]}),
        pd.DataFrame({"user": [0], "item": [99]}),
        pd.DataFrame({"user": [-1], "item": [0]}),
        pd.DataFrame({"user": [0.5], "item": [0]}),
    ],
)
def test_bad_events_are_refused(split, bad) -> None:
    model = PopularityRecommender().fit(split.train)
    with pytest.raises(DataValidationError, match="events"):
        model.partial_fit(bad)
