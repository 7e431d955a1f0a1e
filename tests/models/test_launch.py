"""launch-ranker: fixed launch weights, the collaborative bridge, revealed purchases, explanations, saving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders import HashingEncoder
from zsrec.errors import ConfigError
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.launch import PARTS, LaunchRanker, LaunchSettings
from zsrec.models.registry import load_model


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags", "Knives"), level=2, min_history=3))


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    return EmbeddingSource(HashingEncoder(dim=64), cache_dir=tmp_path_factory.mktemp("cache"))


def fitted(split, embeddings, **settings) -> LaunchRanker:
    """A launch ranker on the tiny shop; 2 neighbours, since its whole warm catalog is 8 items."""
    return LaunchRanker(LaunchSettings(**{"neighbours": 2} | settings), embeddings=embeddings).fit(split.train)


def campers_and_cooks(split) -> tuple[np.ndarray, np.ndarray]:
    even = split.test_users % 2 == 0  # tiny_shop: even users camp, odd users cook
    return split.test_users[even], split.test_users[~even]


def test_launch_weights_are_the_fixed_prior_whatever_the_shop(split, embeddings) -> None:
    other = make_split(tiny_shop(), SplitSettings(categories=("Pans",), level=2, min_history=3))
    for data in (split, other):
        model = fitted(data, embeddings)
        assert model.weights_.tolist() == LaunchSettings(neighbours=2).launch_weights.tolist()
        assert model.weights_[PARTS.index("popularity")] == 0


def test_the_bridge_reaches_new_items_through_their_text_neighbours(split, embeddings) -> None:
    model = fitted(split, embeddings)
    campers, cooks = campers_and_cooks(split)
    bags = split.new_items[split.item_category[split.new_items] == "Outdoor > Sleeping Bags"]
    knives = split.new_items[split.item_category[split.new_items] == "Kitchen > Knives"]
    bridge = model.components(campers, np.concatenate([bags, knives]))["bridge_text"]
    # campers bought tents and stoves, the sleeping bags' text neighbours; nobody who bought those bought pans
    assert bridge[:, : len(bags)].mean() > bridge[:, len(bags) :].mean()
    assert (model.components(cooks, knives)["bridge_text"].mean()) > model.components(cooks, bags)[
        "bridge_text"
    ].mean()


def test_new_items_need_no_interactions_and_warm_items_bridge_to_themselves(split, embeddings) -> None:
    model = fitted(split, embeddings)
    neigh = model._matrix("text")
    warm = np.flatnonzero(model.fit_counts_ > 0)
    assert np.allclose(neigh[warm][:, warm].diagonal(), 1.0)
    for item in split.new_items:  # every cold item points at warm items only
        row = neigh[int(item)]
        assert set(row.indices) <= set(warm.tolist()) and np.isclose(row.sum(), 1.0)


def test_revealed_purchases_lift_the_bought_item_for_everyone_else(split, embeddings) -> None:
    model = fitted(split, embeddings)
    campers, cooks = campers_and_cooks(split)
    hit = int(split.new_items[split.item_category[split.new_items] == "Kitchen > Knives"][0])
    adopters = np.concatenate([campers[:4], cooks[:4]])
    others = np.setdiff1d(split.test_users, adopters)
    column = int(np.flatnonzero(split.new_items == hit)[0])

    def lead(scores: np.ndarray) -> np.ndarray:  # how far the bought item stands above the best other item
        return scores[:, column] - np.delete(scores, column, axis=1).max(axis=1)

    before = lead(model.score(others, split.new_items))
    events = pd.DataFrame({"user": adopters, "item": hit, "timestamp": np.arange(len(adopters), dtype=float)})
    model.partial_fit(events)
    assert model.revealed_counts_[hit] == len(adopters)
    assert model.weights_[PARTS.index("popularity")] > 0
    assert model.popularity_choice_["adopters"] == len(adopters)
    assert (lead(model.score(others, split.new_items)) > before).all()
    assert all(hit in model.histories_[int(u)] for u in adopters)
    assert all(hit in model.base_.histories_[int(u)] for u in adopters)  # the zero-shot part reads them too


def test_too_few_adopters_earn_popularity_no_weight(split, embeddings) -> None:
    model = fitted(split, embeddings)
    events = pd.DataFrame({"user": split.test_users[:2], "item": int(split.new_items[0])})
    model.partial_fit(events)
    assert model.weights_[PARTS.index("popularity")] == 0
    assert "needed" in model.popularity_choice_["reason"]


def test_events_already_in_the_history_are_not_counted_twice(split, embeddings) -> None:
    model = fitted(split, embeddings)
    user, item = int(split.test_users[0]), int(split.new_items[0])
    events = pd.DataFrame({"user": [user, user], "item": [item, item]})
    model.partial_fit(events).partial_fit(events)
    assert model.revealed_counts_[item] == 1


def test_bad_events_are_refused(split, embeddings) -> None:
    model = fitted(split, embeddings)
    with pytest.raises(ValueError, match="item"):
        model.partial_fit(pd.DataFrame({"user": [0], "item": [10_000]}))


def test_explanations_add_up_to_the_score(split, embeddings) -> None:
    model = fitted(split, embeddings)
    user, items = int(split.test_users[0]), split.new_items
    scores = model.score(np.asarray([user]), items)[0]
    for row, explained in enumerate(model.explain_parts(user, items, candidates=items)):
        assert set(explained["contributions"]) <= set(PARTS)
        assert np.isclose(sum(explained["contributions"].values()), scores[row], atol=1e-5)
        assert explained["history"]
    with pytest.raises(ConfigError, match="not among the candidates"):
        model.explain_parts(user, items[:1], candidates=items[1:2])


def test_saved_after_purchases_it_loads_with_identical_scores(split, embeddings, tmp_path) -> None:
    model = fitted(split, embeddings)
    campers, _ = campers_and_cooks(split)
    model.partial_fit(pd.DataFrame({"user": campers[:5], "item": int(split.new_items[0])}))
    model.save(tmp_path / "m")
    assert not list(tmp_path.rglob("*.pkl"))
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, LaunchRanker)
    users = split.test_users
    assert np.array_equal(loaded.score(users, split.new_items), model.score(users, split.new_items))
    assert loaded.weights_.tolist() == model.weights_.tolist()
    # it keeps learning after loading, and its parts share one history list
    loaded.partial_fit(pd.DataFrame({"user": [int(users[-1])], "item": [int(split.new_items[-1])]}))
    assert int(split.new_items[-1]) in loaded.base_.histories_[int(users[-1])]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("neighbours", 0, "neighbours"),
        ("zero_shot_weight", -1.0, "zero_shot_weight"),
        ("popularity_grid", (), "popularity_grid"),
        ("min_adopters", 1, "min_adopters"),
    ],
)
def test_settings_refuse_bad_values(field, value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        LaunchSettings(**{field: value})


def test_popularity_earns_no_weight_when_early_buyers_do_not_predict_later_ones(split, embeddings) -> None:
    """The rule that keeps a learned weight honest: it must win on buyers it was not fitted on. Here the first
    half of the adopters all bought one new item and the second half another, so the early counts point the
    wrong way for the later buyers, and the forward-in-time choice gives popularity no weight."""
    model = fitted(split, embeddings)
    first, second = (int(i) for i in split.new_items[:2])
    adopters = split.test_users[:8]
    items = [first] * 4 + [second] * 4
    model.partial_fit(pd.DataFrame({"user": adopters, "item": items, "timestamp": np.arange(8.0)}))
    assert model.popularity_choice_["adopters"] == 8
    assert model.weights_[PARTS.index("popularity")] == 0
    scores = model.popularity_choice_["validation_ndcg@10"]
    assert scores[0.0] >= max(scores.values()) - 1e-12
