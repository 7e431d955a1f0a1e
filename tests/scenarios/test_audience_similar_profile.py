"""Known answers for audience targeting, cross-category similarity and interest tags on the two-department shop."""

from __future__ import annotations

import numpy as np
import pytest

from zsrec.data.splits import SplitSettings, leave_category_out_split
from zsrec.errors import ConfigError
from zsrec.scenarios.adoption import CategoryScorer
from zsrec.scenarios.audience import AudienceSettings, audience_scores, case_metrics, mean_vector, rank_audience
from zsrec.scenarios.profile import category_sets, interest_tags, split_by_sequence, tag_precision
from zsrec.scenarios.similar import (
    basket_queries,
    embedding_scorer,
    evaluate_baskets,
    evaluate_last_item,
    random_scorer,
    similar_items,
)
from zsrec.scenarios.tasks import audience, item_vectors, similar


# -- audience ----------------------------------------------------------------------------------------------
def test_a_camping_ad_reaches_campers_first(shop2, embeddings) -> None:
    ad, members = audience(shop2, embeddings, text="lantern for camping outdoor", k=10)
    assert ad == "lantern for camping outdoor"
    assert all(int(m.user_id[1:]) % 2 == 0 for m in members)  # u0, u2, ...: the campers
    assert all(m.because and "camping" in m.because[0][0] for m in members)


def test_a_category_ad_reaches_its_department(shop2, embeddings) -> None:
    _, members = audience(shop2, embeddings, category="Mugs", level=2, k=10)
    assert all(int(m.user_id[1:]) % 2 == 1 for m in members)  # cooks


def test_soft_count_counts_every_close_item_and_ignores_far_ones() -> None:
    vectors = np.eye(3, dtype=np.float32)
    ad = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    histories = [np.array([0, 0, 0]), np.array([0]), np.array([1, 2, 1, 2, 1, 2]), np.array([], dtype=np.int64)]
    scores = audience_scores(vectors, histories, ad[None, :], AudienceSettings(temperature=0.05))[:, 0]
    assert scores[0] > scores[1] > scores[2]  # three matches > one match > many unrelated items
    assert scores[0] == pytest.approx(0.05 * np.log(3), abs=1e-6)
    assert scores[3] == -np.inf
    profile = audience_scores(vectors, histories[:2], ad[None, :], AudienceSettings(scoring="profile"))[:, 0]
    assert profile[0] == pytest.approx(profile[1])  # the mean-vector cosine ignores how much a user buys


def test_case_metrics_known_values() -> None:
    m = case_metrics(np.array([0.9, 0.8, 0.1, 0.5]), np.array([True, False, True, False]), k=2)
    assert m["auc"] == pytest.approx(0.5)  # positive ranks 0 and 3 of 4: pairs (0,1)(0,2) right, (3,·) wrong
    assert m["precision@2"] == pytest.approx(0.5)


def test_audience_input_errors(shop2, embeddings) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        audience(shop2, embeddings, text="x", category="Mugs")
    with pytest.raises(ConfigError, match="unknown item ids"):
        audience(shop2, embeddings, items=["nope"])
    with pytest.raises(ConfigError, match="temperature"):
        AudienceSettings(temperature=0)
    with pytest.raises(ConfigError, match="k must"):
        rank_audience(shop2, np.eye(3), np.ones(3), k=0)
    with pytest.raises(ConfigError, match="no item"):
        mean_vector(np.empty((0, 3)))


# -- similar -------------------------------------------------------------------------------------------------
def test_similar_items_stay_in_the_department_but_leave_the_category(shop2, embeddings) -> None:
    query, found = similar(shop2, embeddings, "i0", k=5, other_categories=True, level=2)
    assert query.category == "Outdoor > Tents"
    assert all(f.category.startswith("Outdoor > ") and f.category != "Outdoor > Tents" for f in found)
    _, same = similar(shop2, embeddings, "i0", k=2)
    assert [f.category for f in same] == ["Outdoor > Tents", "Outdoor > Tents"]
    _, other_dept = similar(shop2, embeddings, "i0", k=3, other_categories=True, level=1)
    assert all(not f.category.startswith("Outdoor") for f in other_dept)


def test_last_item_finds_the_held_out_category_better_than_random(shop2, embeddings) -> None:
    split = leave_category_out_split(shop2, SplitSettings(level=2, categories=("Lanterns", "Mugs"), min_history=3))
    vectors = item_vectors(shop2, embeddings)
    out = evaluate_last_item(
        split, {"zero-shot": embedding_scorer(vectors), "random": random_scorer(0)}, ks=(3,), n_bootstrap=50
    )
    # 6 new items, 3 of each department: text keeps a camper's last item on the lanterns
    assert out["zero-shot"]["recall@3"] > 0.9
    assert out["random"]["recall@3"] < 0.7


def test_basket_queries_only_target_other_departments(shop2, embeddings) -> None:
    baskets = np.array([1, 1, 1, 2, 2, 3, 3])
    items = np.array([0, 1, 30, 2, 5, 40, 41])  # basket 1 mixes departments; 2 and 3 do not
    bq = basket_queries(shop2, baskets, items, level=1, n_queries=10, seed=0)
    assert len(bq.queries) == 1 and bq.queries[0] in (0, 1, 30)
    groups = shop2.category_at(1)
    assert all(groups[r] != groups[bq.queries[0]] for r in bq.relevant[0])
    vectors = item_vectors(shop2, embeddings)
    out = evaluate_baskets(bq, {"zero-shot": embedding_scorer(vectors)}, ks=(10,), n_bootstrap=10)
    assert out["zero-shot"]["n_queries"] == 1
    with pytest.raises(ConfigError, match="two different"):
        basket_queries(shop2, np.array([2, 2]), np.array([2, 5]))


def test_similar_rejects_bad_k(shop2) -> None:
    with pytest.raises(ConfigError, match="k must"):
        similar_items(shop2, np.eye(shop2.n_items), 0, k=0)


# -- profile -------------------------------------------------------------------------------------------------
def test_interest_tags_name_the_users_department(shop2, embeddings) -> None:
    scorer = CategoryScorer(shop2, 2, embeddings)
    tags = interest_tags(scorer, 0, k=5)  # user 0 is a camper (and buys groceries, like everyone)
    assert all(not t.category.startswith("Kitchen") for t in tags)
    assert any(t.category.startswith("Outdoor > ") for t in tags)
    assert all(t.because for t in tags)
    new = interest_tags(scorer, 0, k=2, new_only=True)  # the 2 outdoor categories they have not bought
    assert [t.in_history for t in new] == [False, False]
    assert all(t.category.startswith("Outdoor > ") for t in new)


def test_tag_precision_known_values() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.5]])
    past, future = [{0}], [{0, 2}]
    allowed = np.ones(4, dtype=bool)
    assert tag_precision(scores, np.array([0]), past, future, allowed, k=2, new_only=False)[0] == 0.5  # {0, 1}
    # new only: 0 is past; tags {1, 3}; target {2} -> 0
    assert tag_precision(scores, np.array([0]), past, future, allowed, k=2, new_only=True)[0] == 0.0
    assert np.isnan(tag_precision(scores, np.array([0]), past, [{0}], allowed, k=2, new_only=True)[0])


def test_sequence_split_keeps_each_users_early_part(shop2) -> None:
    early, late = split_by_sequence(shop2, 0.5)
    assert len(early.interactions) + len(late.interactions) == len(shop2.interactions)
    for u in (0, 1):
        e = early.interactions[early.interactions["user"] == u]["timestamp"].max()
        lt = late.interactions[late.interactions["user"] == u]["timestamp"].min()
        assert e < lt
    sets = category_sets(late, 2, np.unique(shop2.category_at(2)))
    assert len(sets) == shop2.n_users and all(sets[u] for u in range(4))
