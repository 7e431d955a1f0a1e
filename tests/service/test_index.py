"""The IVF index: 8-bit lists re-scored exactly, against brute force on clustered vectors."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from zsrec.errors import ConfigError
from zsrec.service.index import (
    IndexSettings,
    IVFIndex,
    exact_top_k,
    load_snapshot,
    recall_at_k,
    sample_queries,
    save_snapshot,
)


@pytest.fixture(scope="module")
def catalog() -> np.ndarray:
    """4,000 unit vectors in 40 tight clusters (like recombined titles), dim 32."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32))
    v = centres[rng.integers(0, 40, 4000)] + 0.3 * rng.normal(size=(4000, 32))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ matrix.T), axis=1, kind="stable")[:, :k]


def test_sq8_candidates_are_rescored_exactly(catalog: np.ndarray) -> None:
    rows = np.arange(len(catalog))
    index = IVFIndex.build(rows, catalog, IndexSettings(codec="sq8", refine=4), exact=lambda: catalog)
    assert isinstance(index.index, faiss.IndexIVFScalarQuantizer)
    assert index.describe()["codec"] == "sq8"
    queries = sample_queries(catalog, 50, seed=3)
    scores, found = index.search_with(queries, 10, index.index.nlist)  # every list probed
    # the scores are the float32 inner products, not the 8-bit approximations, and come best first
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", catalog[found], queries), rtol=0, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert recall_at_k(found, exact_top(catalog, queries, 10)) >= 0.99


def test_without_rescoring_sq8_scores_are_approximate(catalog: np.ndarray) -> None:
    """What the re-scoring buys: the bare 8-bit scores differ from the exact ones."""
    rows = np.arange(len(catalog))
    bare = IVFIndex.build(rows, catalog, IndexSettings(codec="sq8"))
    assert bare.refine == 1
    queries = sample_queries(catalog, 50, seed=3)
    scores, found = bare.search_with(queries, 10, bare.index.nlist)
    error = np.abs(scores - np.einsum("qkd,qd->qk", catalog[found], queries)).max()
    assert error > 1e-4


def test_filters_apply_before_rescoring(catalog: np.ndarray) -> None:
    rows = np.arange(len(catalog))
    index = IVFIndex.build(rows, catalog, IndexSettings(), exact=lambda: catalog)
    query = catalog[:1]
    include = np.arange(0, 4000, 7)
    _, found = index.search_with(query, 10, index.index.nlist, include=include, exclude=np.array([0, 7, 14]))
    assert set(found[0].tolist()) <= set(include.tolist()) - {0, 7, 14}
    few = np.array([5, 9])
    scores, found = index.search_with(query, 10, index.index.nlist, include=few)
    assert sorted(found[0][found[0] >= 0].tolist()) == [5, 9]
    assert np.isneginf(scores[0][found[0] < 0]).all() and (found[0] < 0).sum() == 8


def test_snapshot_keeps_the_codec_and_searches_the_same(catalog: np.ndarray, tmp_path) -> None:
    rows = np.arange(len(catalog))
    index = IVFIndex.build(rows, catalog, IndexSettings(), exact=lambda: catalog)
    save_snapshot(index, tmp_path, generation="abc", version=3)
    loaded, version = load_snapshot(tmp_path, generation="abc", max_version=3, exact=lambda: catalog, refine=4)
    assert version == 3 and isinstance(loaded.index, faiss.IndexIVFScalarQuantizer)
    assert loaded.nprobe == index.nprobe
    queries = sample_queries(catalog, 20, seed=5)
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_nprobe_is_the_smallest_reaching_the_target_on_doublings_then_quarter_steps(catalog: np.ndarray) -> None:
    rows = np.arange(len(catalog))
    tuned = []
    for target in (0.8, 0.9, 0.95, 0.97, 0.99):
        settings = IndexSettings(target_recall=target)
        index = IVFIndex.build(rows, catalog, settings, exact=lambda: catalog)
        queries = sample_queries(catalog, settings.tuning_queries, settings.seed + 1)
        truth = exact_top(catalog, queries, 10)

        def recall(
            nprobe: int, index: IVFIndex = index, queries: np.ndarray = queries, truth: np.ndarray = truth
        ) -> float:
            return recall_at_k(index.search_with(queries, 10, nprobe)[1], truth)

        assert index.recall_at_10 == pytest.approx(recall(index.nprobe)) and index.recall_at_10 >= target
        power = 1 << (index.nprobe - 1).bit_length()  # the doubling that first reached the target
        tried_before = [p for p in (1 << i for i in range(power.bit_length() - 1))]
        tried_before += [p for p in range(power // 2 + 1, index.nprobe) if (p - power // 2) % max(1, power // 8) == 0]
        assert all(recall(p) < target for p in tried_before), (target, index.nprobe)
        tuned.append(index.nprobe)
    assert any(p & (p - 1) for p in tuned), tuned  # some target landed between two powers of two


@pytest.mark.parametrize("chunk", [7, 64, 1 << 16])
def test_exact_top_k_in_chunks_matches_the_whole_score_matrix(catalog: np.ndarray, chunk: int) -> None:
    queries = sample_queries(catalog, 30, seed=9)
    found = exact_top_k(queries, catalog, 10, chunk=chunk)
    np.testing.assert_array_equal(found, exact_top(catalog, queries, 10))
    few = exact_top_k(queries, catalog[:4], 10, chunk=3)  # fewer vectors than k: -1 pads
    np.testing.assert_array_equal(few[:, :4], exact_top(catalog[:4], queries, 4))
    assert (few[:, 4:] == -1).all()


@pytest.mark.parametrize("bad", [{"codec": "pq"}, {"refine": 0}])
def test_bad_index_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        IndexSettings(**bad)


def test_float32_lists_are_not_rescored(catalog: np.ndarray) -> None:
    """A flat IVF already scores exactly: the exact matrix is ignored and no extra candidates are fetched."""
    rows = np.arange(len(catalog))
    flat = IVFIndex.build(rows, catalog, IndexSettings(codec="flat"), exact=lambda: catalog)
    assert flat.exact is None and flat.refine == 1 and flat.describe()["codec"] == "flat"
    queries = sample_queries(catalog, 20, seed=4)
    scores, found = flat.search_with(queries, 10, flat.index.nlist)
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", catalog[found], queries), atol=1e-5)
