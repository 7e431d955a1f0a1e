"""`new_pool_ranks` (the tuners' fast path) gives exactly the ranks of `target_ranks`, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.evaluation.evaluate import PrecomputedScores, target_ranks
from zsrec.evaluation.ranking import new_pool_ndcg, new_pool_ranks


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags", "Knives"), level=2, min_history=3))


@pytest.mark.parametrize("kind", ["continuous", "coarse", "constant", "nan"])
def test_new_pool_ranks_match_target_ranks(split, kind) -> None:
    rng = np.random.default_rng(7)
    shape = (len(split.test_users), len(split.new_items))
    scores = {
        "continuous": rng.normal(size=shape),
        "coarse": rng.integers(0, 3, size=shape).astype(float),  # many ties: the tie-break order decides
        "constant": np.ones(shape),
        "nan": np.where(rng.random(shape) < 0.3, np.nan, rng.normal(size=shape)),
    }[kind]
    for seed in (0, 5):
        want, _ = target_ranks(PrecomputedScores(split.test_users, scores), split, "new", seed=seed)
        got = new_pool_ranks(scores, split, seed=seed)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        # with a cut-off, ranks below it are exact and the rest are distinct stand-ins from the cut-off on
        for top in (1, 2, 3):
            capped = new_pool_ranks(scores, split, seed=seed, top=top)
            for g, w in zip(capped, want, strict=True):
                np.testing.assert_array_equal(g[w < top], w[w < top])
                assert sorted(g[w >= top]) == list(range(top, top + int((w >= top).sum())))


def test_new_pool_ranks_refuses_a_matrix_of_the_wrong_shape(split) -> None:
    with pytest.raises(ValueError, match="expected"):
        new_pool_ranks(np.zeros((len(split.test_users), len(split.new_items) + 1)), split)


def test_new_pool_ndcg_is_the_full_rankings_ndcg(split) -> None:
    from zsrec.evaluation.metrics import user_metrics

    scores = np.random.default_rng(3).integers(0, 4, size=(len(split.test_users), len(split.new_items))).astype(float)
    for k in (1, 2):
        want, _ = target_ranks(PrecomputedScores(split.test_users, scores), split, "new", seed=1)
        expected = user_metrics(want, len(split.new_items), (k,))[f"ndcg@{k}"]
        np.testing.assert_allclose(new_pool_ndcg(scores, split, seed=1, k=k), expected)
