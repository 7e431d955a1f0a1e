"""BM25: hand-computed weights on a three-item catalog, the tiny shop's right answer, a save/load round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.dataset import Dataset
from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.models.bm25 import Bm25Recommender, Bm25Settings


def three_items() -> Dataset:
    """Texts "alpha beta", "alpha gamma", "gamma gamma delta"; user 0 bought item 0, user 1 items 0 and 2."""
    items = pd.DataFrame(
        {"item_id": ["x", "y", "z"], "title": ["alpha beta", "alpha gamma", "gamma gamma delta"], "category": ""}
    )
    items["description"], items["brand"] = "", ""
    users = pd.DataFrame({"user_id": ["u0", "u1"], "profile": ""})
    inter = pd.DataFrame({"user": [0, 1, 1], "item": [0, 0, 2], "timestamp": [0.0, 1.0, 2.0]})
    return Dataset("three", items, users, inter)


def plain(**kw) -> Bm25Settings:
    return Bm25Settings(template=ItemTextTemplate(fields=("title",)), min_df=1, stop_words=None, **kw)


def test_weights_match_the_bm25_formula_by_hand() -> None:
    model = Bm25Recommender(plain()).fit(three_items())
    weights = model._item_matrices()[0].toarray()  # columns: alpha, beta, delta, gamma
    idf_2 = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # a term in 2 of 3 items
    idf_1 = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    mean_len = 7 / 3
    # item 2, "gamma" twice in a 3-term text
    expected = idf_2 * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / mean_len))
    assert weights[2, 3] == pytest.approx(expected, rel=1e-6)
    # item 0, "beta" once in a 2-term text
    assert weights[0, 1] == pytest.approx(idf_1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / mean_len)), rel=1e-6)
    assert weights[0, 2] == 0.0  # "delta" is not in item 0


def test_k1_zero_leaves_idf_only() -> None:
    weights = Bm25Recommender(plain(k1=0.0)).fit(three_items())._item_matrices()[0].toarray()
    idf_2 = math.log(1 + 1.5 / 2.5)
    np.testing.assert_allclose(weights[:, 0], [idf_2, idf_2, 0.0], rtol=1e-6)


def test_query_counts_or_marks_the_history_terms() -> None:
    data = three_items()
    counted = Bm25Recommender(plain(query_weighting="count")).fit(data)
    marked = Bm25Recommender(plain(query_weighting="binary")).fit(data)
    # user 1's history: "alpha beta" + "gamma gamma delta"
    np.testing.assert_allclose(counted.queries(np.array([1])).toarray(), [[1, 1, 1, 2]])
    np.testing.assert_allclose(marked.queries(np.array([1])).toarray(), [[1, 1, 1, 1]])
    weights = counted._item_matrices()[0].toarray()
    score = counted.score(np.array([1]), np.array([1]))[0, 0]  # item 1 "alpha gamma"
    assert score == pytest.approx(weights[1, 0] + 2 * weights[1, 3], rel=1e-6)
    # user 0 bought "alpha beta": "alpha gamma" shares a term, "gamma gamma delta" none
    assert counted.score(np.array([0]), np.array([1, 2])).tolist()[0][1] == 0.0


def test_campers_get_the_held_out_sleeping_bags_first() -> None:
    split = make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags",), level=2, min_history=3))
    model = Bm25Recommender(plain()).fit(split.train)
    campers = np.array([u for u in split.test_users if u % 2 == 0])
    kitchen = np.arange(7, 14)
    top = model.recommend(campers, k=1, candidates=np.concatenate([split.new_items, kitchen])).items[:, 0]
    assert set(top.tolist()) <= set(split.new_items.tolist())


def test_save_then_load_scores_the_same(tmp_path) -> None:
    data = tiny_shop()
    model = Bm25Recommender(Bm25Settings(min_df=1, query_weighting="binary", k1=1.5)).fit(data)
    model.save(tmp_path / "bm25")
    assert not list((tmp_path / "bm25").rglob("*.pkl"))
    loaded = Bm25Recommender.load(tmp_path / "bm25")
    assert loaded.settings == model.settings
    users, items = np.arange(data.n_users), np.arange(data.n_items)
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))


@pytest.mark.parametrize(
    "bad", [{"k1": -1.0}, {"b": 1.5}, {"min_df": 0}, {"stop_words": "french"}, {"query_weighting": "tf"}]
)
def test_bad_settings_name_the_field(bad) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        Bm25Settings(**bad)


def test_a_catalog_without_shared_terms_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="min_df=5"):
        Bm25Recommender(Bm25Settings(min_df=5)).fit(three_items())
