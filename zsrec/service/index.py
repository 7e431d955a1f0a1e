"""Vector indexes over the catalog: exact inner product for small catalogs, faiss IVF above a size threshold.

For a known user the index only proposes candidates (cosine to the user's history vector); the served model
scores them (zsrec.service.served), so a long candidate list is taken with `refine=1`.

Ids are the store's item rows. The IVF lists hold 8-bit scalar-quantized codes (a quarter of float32's memory
to scan, and faster per query) and the best `k x refine` candidates
are re-scored exactly against the caller's float32 vectors, so quantization costs no recall at the top.

Both kinds support add, remove and search while serving (callers hold a reader/writer lock: faiss does not
allow a search during an add). IVF was chosen over HNSW because HNSW cannot
remove (tombstones and rebuilds) and builds far slower, while IVF with
a tuned `nprobe` reaches the same recall; benchmarks/serving.py measures both.

Snapshots are written to a temporary name and renamed, named after the store generation and version they
reflect, so a crash mid-write leaves the previous snapshot intact and a stale one is brought up to date from
the store's rows written since.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from zsrec.errors import ConfigError, check_at_least, check_choice

CODECS = ("sq8", "flat")


@dataclass(frozen=True)
class IndexSettings:
    """When to go approximate and how hard the approximate index searches."""

    ann_threshold: int = 20_000  # live items at or above which IVF replaces exact search
    target_recall: float = (
        0.97  # nprobe is raised at build time until recall@10 vs exact on sample queries reaches this
    )
    max_nprobe: int = 256  # ... or until this many lists are probed
    tuning_queries: int = 200  # sample queries used to measure recall@10 when tuning nprobe
    codec: str = "sq8"  # how IVF lists store vectors: "sq8" (8-bit codes, re-scored exactly) or "flat" (float32)
    refine: int = 4  # sq8: k x this many candidates are re-scored against the exact vectors
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, ann_threshold=1)
        if not 0 < self.target_recall <= 1:
            raise ConfigError(f"target_recall must be in (0, 1], got {self.target_recall}")
        check_at_least(self, max_nprobe=1, tuning_queries=1)
        check_choice(self, "codec", CODECS)
        check_at_least(self, refine=1)


class VectorIndex(Protocol):
    kind: str

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        include: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        refine: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (len(queries), k), best first; row -1 pads when fewer qualify.

        `include` restricts the search to those item rows (a category filter), `exclude` leaves rows out (the
        user's history, the query item). `refine`: how many times k quantised candidates are re-scored exactly
        (None: the index's own setting; 1 for a long candidate list that a model re-scores anyway)."""
        ...

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, rows: np.ndarray) -> None: ...

    def describe(self) -> dict[str, float | int | str]: ...


class ExactIndex:
    """Brute-force inner product over a row-indexed matrix that the caller owns and updates in place.

    `matrix()` returns the current (capacity, dim) matrix and `alive()` the live flag per row, so adds and
    removes need nothing here: the caller has already written the rows.
    """

    kind = "exact"

    def __init__(self, matrix: Callable[[], np.ndarray], alive: Callable[[], np.ndarray]) -> None:
        self._matrix = matrix
        self._alive = alive

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        include: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        refine: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        matrix, alive = self._matrix(), self._alive()
        if exclude is not None:
            alive = alive.copy()
            alive[exclude[exclude < len(alive)]] = False
        if include is None:
            scores = queries @ matrix.T
            scores[:, ~alive] = -np.inf
            candidates = None
        else:
            candidates = include[alive[include]]
            scores = queries @ matrix[candidates].T
        return _top_k(scores, k, candidates)

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        pass

    def remove(self, rows: np.ndarray) -> None:
        pass

    def describe(self) -> dict[str, float | int | str]:
        return {"kind": self.kind, "recall_at_10": 1.0}


class IVFIndex:
    """faiss IVF (inner product) with the store rows as ids; true removal via `remove_ids`.

    With `exact` (a callable returning the caller's row-indexed float32 matrix, like `ExactIndex`), the best
    `k x refine` candidates of 8-bit lists are re-scored exactly and the top `k` of those returned (float32
    lists score exactly already: `exact` is ignored for them).
    """

    kind = "ivf"

    def __init__(
        self,
        index: faiss.IndexIVF,
        *,
        nprobe: int,
        recall_at_10: float,
        exact: Callable[[], np.ndarray] | None = None,
        refine: int = 1,
    ) -> None:
        self.index = index
        self.nprobe = nprobe
        self.recall_at_10 = recall_at_10
        self.exact = exact if isinstance(index, faiss.IndexIVFScalarQuantizer) else None
        self.refine = refine if self.exact is not None else 1

    @classmethod
    def build(
        cls,
        rows: np.ndarray,
        vectors: np.ndarray,
        settings: IndexSettings,
        exact: Callable[[], np.ndarray] | None = None,
    ) -> IVFIndex:
        """Train the coarse quantizer on a sample, add everything, then tune nprobe on sample queries.

        `exact()` must return a matrix whose row `rows[j]` is `vectors[j]` (the engine's own matrix); without it
        the candidates are not re-scored."""
        n, dim = vectors.shape
        nlist = ivf_lists(n)
        rng = np.random.default_rng(settings.seed)
        train = vectors[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
        if settings.codec == "sq8":
            index = faiss.IndexIVFScalarQuantizer(
                faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = settings.seed
        index.cp.min_points_per_centroid = 1  # the sample is sized above; no warning for tiny catalogs
        index.train(np.ascontiguousarray(train))
        index.add_with_ids(np.ascontiguousarray(vectors), rows.astype(np.int64))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove_ids by id lookup, not a scan of every list
        built = cls(index, nprobe=1, recall_at_10=0.0, exact=exact, refine=settings.refine)
        built.nprobe, built.recall_at_10 = tune_nprobe(built, rows, vectors, settings)
        return built

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        include: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        refine: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.search_with(queries, k, self.nprobe, include=include, exclude=exclude, refine=refine)

    def search_with(
        self,
        queries: np.ndarray,
        k: int,
        nprobe: int,
        *,
        include: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        refine: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        _one_openmp_thread()
        refine = self.refine if refine is None else refine
        # the selectors are kept in locals: faiss holds raw pointers to them during the search
        inc = None if include is None else faiss.IDSelectorBatch(np.ascontiguousarray(include, dtype=np.int64))
        exc = None if exclude is None else faiss.IDSelectorBatch(np.ascontiguousarray(exclude, dtype=np.int64))
        not_exc = None if exc is None else faiss.IDSelectorNot(exc)
        both = faiss.IDSelectorAnd(inc, not_exc) if inc is not None and not_exc is not None else None
        selector = both or inc or not_exc
        params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        scores, found = self.index.search(queries, k * refine, params=params)
        if self.exact is None:
            scores[found < 0] = -np.inf
            return scores, found
        scores = np.einsum("qcd,qd->qc", self.exact()[np.maximum(found, 0)], queries)
        scores[found < 0] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        scores, found = np.take_along_axis(scores, order, axis=1), np.take_along_axis(found, order, axis=1)
        found[~np.isfinite(scores)] = -1
        return scores, found

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        _one_openmp_thread()  # write threads too: an OpenMP team here would spin on the cores reads need
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), rows.astype(np.int64))

    def remove(self, rows: np.ndarray) -> None:
        if len(rows):
            _one_openmp_thread()
            self.index.remove_ids(np.ascontiguousarray(rows, dtype=np.int64))

    def describe(self) -> dict[str, float | int | str]:
        return {
            "kind": self.kind,
            "codec": "sq8" if isinstance(self.index, faiss.IndexIVFScalarQuantizer) else "flat",
            "refine": self.refine,
            "nlist": int(self.index.nlist),
            "nprobe": self.nprobe,
            "recall_at_10": self.recall_at_10,
        }


_THREAD = threading.local()


def _one_openmp_thread() -> None:
    """faiss runs each search in an OpenMP team; requests already search in parallel threads, and a team per
    request thread oversubscribes the cores. OpenMP's thread count belongs to the calling thread (a new
    request thread starts from the process default, the core count unless OMP_NUM_THREADS says otherwise), so
    each thread sets it to 1 on its first search."""
    if not getattr(_THREAD, "one_openmp_thread", False):
        faiss.omp_set_num_threads(1)
        _THREAD.one_openmp_thread = True


def ivf_lists(n: int) -> int:
    """About 2·sqrt(n) lists, a power of two (1M items → 2,048): sqrt-scaling keeps probe cost balanced."""
    lists = 2 ** round(math.log2(2 * math.sqrt(max(n, 1))))
    return int(max(1, min(16384, lists, n // 8)))  # tiny catalogs (tests): at least 8 training points per list


def sample_queries(vectors: np.ndarray, n: int, seed: int) -> np.ndarray:
    """User-like queries: normalised means of 1-5 random catalog vectors (a user vector is such a mean)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    for q in range(n):
        out[q] = vectors[rng.choice(len(vectors), size=int(rng.integers(1, 6)))].mean(axis=0)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-k rows that the approximate search also returned."""
    hits = [
        len(set(f.tolist()) & set(t.tolist())) / max(1, int((t >= 0).sum())) for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def tune_nprobe(index: IVFIndex, rows: np.ndarray, vectors: np.ndarray, settings: IndexSettings) -> tuple[int, float]:
    """The smallest nprobe whose recall@10 vs exact on sample queries reaches the target, and that recall.

    nprobe doubles from 1 until the target is reached, then the quarter steps between the last two powers of
    two are tried, smallest first, since a search costs about nprobe: at a million items this finds a smaller
    nprobe than doubling alone, still at the target recall, and queries are faster for it."""
    queries = sample_queries(vectors, settings.tuning_queries, settings.seed + 1)
    truth = rows[exact_top_k(queries, vectors, 10)]

    def recall(nprobe: int) -> float:
        return recall_at_k(index.search_with(queries, 10, nprobe)[1], truth)

    most = min(settings.max_nprobe, index.index.nlist)
    below, nprobe, reached = 0, 1, recall(1)
    while reached < settings.target_recall and nprobe < most:
        below, nprobe = nprobe, min(2 * nprobe, most)
        reached = recall(nprobe)
    if reached < settings.target_recall:
        return nprobe, reached  # the most lists allowed, short of the target
    gap = nprobe - below
    for between in sorted({below + step * gap // 4 for step in (1, 2, 3)} - {below, nprobe}):
        got = recall(between)
        if got >= settings.target_recall:
            return between, got
    return nprobe, reached


def exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int, chunk: int = 1 << 16) -> np.ndarray:
    """Positions in `vectors` of each query's exact top `k` by inner product, best first (-1 pads), scanning
    `chunk` vectors at a time: the whole (queries, n) score matrix and its argpartition took 2.4 GB at 1M items
    and 200 queries, at the top of the index build's memory peak."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best = np.full((len(queries), 0), -1, dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        scores, found = _top_k(queries @ vectors[start : start + chunk].T, k, None)
        found = np.where(found >= 0, found + start, -1)
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        best_scores, order = _top_k(merged_scores, k, None)
        best = np.take_along_axis(np.concatenate([best, found], axis=1), np.maximum(order, 0), axis=1)
        best[order < 0] = -1
    return best if best.shape[1] == k else np.full((len(queries), k), -1, dtype=np.int64)


def _top_k(scores: np.ndarray, k: int, candidates: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` per row of `scores` as (scores, rows); rows map through `candidates` when given; -1 pads."""
    n = scores.shape[1]
    take = min(k, n)
    out_s = np.full((len(scores), k), -np.inf, dtype=np.float32)
    out_r = np.full((len(scores), k), -1, dtype=np.int64)
    if take == 0:
        return out_s, out_r
    part = np.argpartition(-scores, take - 1, axis=1)[:, :take] if take < n else np.tile(np.arange(n), (len(scores), 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    out_s[:, :take] = np.take_along_axis(part_scores, order, axis=1)
    out_r[:, :take] = best if candidates is None else candidates[best]
    out_r[~np.isfinite(out_s)] = -1
    return out_s, out_r


# -- snapshots ---------------------------------------------------------------------------------------------
_SNAPSHOT = re.compile(r"ivf-(?P<generation>[0-9a-f]+)-(?P<version>\d+)-(?P<nprobe>\d+)-(?P<recall>\d+)\.faiss")


def save_snapshot(index: IVFIndex, folder: Path, *, generation: str, version: int) -> Path:
    """Write `index` atomically as the snapshot of store `version`, then delete older snapshots."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ivf-{generation}-{version}-{index.nprobe}-{round(index.recall_at_10 * 1e6)}.faiss"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a snapshot is as readable as the store beside it
        faiss.write_index(index.index, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in folder.glob("ivf-*.faiss"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return folder / name


def load_snapshot(
    folder: Path,
    *,
    generation: str,
    max_version: int,
    exact: Callable[[], np.ndarray] | None = None,
    refine: int = 1,
) -> tuple[IVFIndex, int] | None:
    """The newest readable snapshot of this store generation at or below `max_version`, with its version.

    `exact` and `refine` are as for `IVFIndex`: the snapshot holds the lists, not how they are searched."""
    found = []
    for path in folder.glob("ivf-*.faiss") if folder.exists() else ():
        m = _SNAPSHOT.fullmatch(path.name)
        if m and m["generation"] == generation and int(m["version"]) <= max_version:
            found.append((int(m["version"]), path, int(m["nprobe"]), int(m["recall"]) / 1e6))
    for version, path, nprobe, recall in sorted(found, reverse=True):
        try:
            index = faiss.read_index(str(path))
        except RuntimeError:  # unreadable: fall back to an older snapshot or a rebuild
            continue
        return IVFIndex(index, nprobe=nprobe, recall_at_10=recall, exact=exact, refine=refine), version
    return None
