"""Recommendations for many users at once: every user of a model folder (or a list of them), streamed to a file.

`export_recommendations(model_dir, out=...)` scores users in chunks sized so that one chunk's score matrix stays
within a memory budget, whatever the catalog size, and writes each chunk as it comes (parquet, csv or jsonl)
through a temporary file that is renamed into place only once the whole file is written. The model folder's
large arrays are memory-mapped on load (`zsrec.io.load_npy`), so the item vectors are never copied per chunk.

`user_ranking(model_dir, user_id)` is one user's ranking in the form the HTTP service's `/recommend` answers,
with titles and explanations.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from zsrec.errors import ConfigError
from zsrec.io import atomic_file, check_out_writable
from zsrec.models.base import Explainable, Recommender
from zsrec.models.ids import (
    RANKING_COLUMNS,
    CatalogIds,
    candidate_items,
    check_k,
    model_ids,
    ranking_rows,
    user_indexes,
)
from zsrec.models.registry import load_model
from zsrec.reporting import Reporter, SilentReporter
from zsrec.service.bundle import DATABASE
from zsrec.service.store import CatalogStore

#: the batch output: the ranking columns plus the history item that explains each row best (null when the
#: model cannot explain, or the user has no history)
BATCH_COLUMNS = (*RANKING_COLUMNS, "because_item_id")
BATCH_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("score", pa.float64()),
        ("rank", pa.int64()),
        ("because_item_id", pa.string()),
    ]
)
FORMATS = (".parquet", ".csv", ".jsonl")
ALL_USERS = "all"
#: bytes per (user, candidate) pair while a chunk is scored: the score matrix, the temporaries of a fused score
#: (its standardised parts) and the top-k selection (negated scores, int64 positions) have that shape
BYTES_PER_PAIR = 32


@dataclass(frozen=True)
class BatchSettings:
    """What to recommend and how much memory one chunk of users may take.

    Attributes:
        k: items per user.
        new_only: only items with no interaction in the data the model was fitted on.
        categories: only items in these categories (a path prefix "A > B" or a name at any level).
        explain: add each row's strongest explaining history item (models that can explain).
        memory_mb: the score matrix of one chunk of users stays within about this many MiB.
        max_chunk_users: users per chunk at most (small catalogs).
    """

    k: int = 50
    new_only: bool = False
    categories: tuple[str, ...] | None = None
    explain: bool = True
    memory_mb: int = 256
    max_chunk_users: int = 2048

    def __post_init__(self) -> None:
        check_k(self.k)
        if self.memory_mb < 1:
            raise ConfigError(f"memory_mb must be >= 1, got {self.memory_mb}")
        if self.max_chunk_users < 1:
            raise ConfigError(f"max_chunk_users must be >= 1, got {self.max_chunk_users}")

    def chunk_users(self, n_candidates: int) -> int:
        """Users per chunk for a catalog of `n_candidates` items."""
        fits = (self.memory_mb << 20) // max(1, n_candidates * BYTES_PER_PAIR)
        return int(min(self.max_chunk_users, max(1, fits)))


@dataclass(frozen=True)
class BatchResult:
    out: Path
    users: int
    rows: int
    seconds: float

    @property
    def users_per_second(self) -> float:
        return self.users / self.seconds if self.seconds > 0 else float("inf")


# -- input -------------------------------------------------------------------------------------------------
def output_format(out: str | Path) -> str:
    """The format an output path asks for by its suffix; ConfigError for any other."""
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"--out {out}: give a file ending in {', '.join(FORMATS)}")
    return suffix


def read_user_ids(users: str | Path | Sequence[object], ids: CatalogIds) -> list[str]:
    """The user ids to score: "all" (every user the model knows, in its order), a file, or a list.

    A file is a `.csv`/`.parquet`/`.jsonl` with a `user_id` column, or plain text with one id a line.
    """
    if isinstance(users, str) and users == ALL_USERS:
        return [str(u) for u in ids.users]
    if isinstance(users, str | Path):
        return _ids_from_file(Path(users))
    return [str(u) for u in users]


def _ids_from_file(path: Path) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"--users {path}: no such file (give `all` or a file of user ids)")
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": lambda p: pd.read_csv(p, dtype=str),
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
    }
    if suffix not in readers:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip()]
    frame = readers[suffix](path)
    if "user_id" not in frame.columns:
        raise ConfigError(f"--users {path} has no user_id column (columns: {', '.join(map(str, frame.columns))})")
    return frame["user_id"].dropna().astype(str).tolist()


# -- scoring -----------------------------------------------------------------------------------------------
def recommend_chunk(
    model: Recommender, users: np.ndarray, wanted: Sequence[str], candidates: np.ndarray, settings: BatchSettings
) -> pd.DataFrame:
    """The batch rows of one chunk of user indexes `users` (ids `wanted`)."""
    rows = ranking_rows(model, users, wanted, candidates, settings.k)
    rows["because_item_id"] = _because(model, users, rows, settings) if len(rows) else pd.Series(dtype=object)
    return rows.reset_index(drop=True)


def _because(model: Recommender, users: np.ndarray, rows: pd.DataFrame, settings: BatchSettings) -> np.ndarray:
    out = np.full(len(rows), None, dtype=object)
    if not settings.explain or not isinstance(model, Explainable):
        return out
    ids = model_ids(model)
    position = {str(item): n for n, item in enumerate(ids.items)}
    items = np.fromiter((position[i] for i in rows["item_id"]), dtype=np.int64, count=len(rows))
    user_of = {str(ids.users[u]): int(u) for u in users}
    starts = np.flatnonzero(rows["rank"].to_numpy() == 1)  # each user's rows are one block from rank 1
    for block in np.split(np.arange(len(rows)), starts[1:]):
        user = user_of[rows["user_id"].iat[block[0]]]
        if len(model.histories_[user]):
            reasons = model.explain(user, items[block], 1)
            out[block] = [ids.items[r[0][0]] if r else None for r in reasons]
    return out


def iter_recommendations(
    model: Recommender,
    user_ids: Sequence[str],
    settings: BatchSettings | None = None,
    *,
    advance: Callable[[int], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The batch rows of `user_ids`, one DataFrame per chunk of users (columns BATCH_COLUMNS), in their order."""
    settings = settings or BatchSettings()
    ids = model_ids(model)
    users = user_indexes(ids, user_ids)  # every id checked before the first chunk is scored
    candidates = candidate_items(model, new_only=settings.new_only, categories=settings.categories)
    step = settings.chunk_users(len(candidates))
    for start in range(0, len(users), step):
        chunk = slice(start, start + step)
        yield recommend_chunk(model, users[chunk], user_ids[chunk], candidates, settings)
        if advance is not None:
            advance(len(users[chunk]))


# -- output ------------------------------------------------------------------------------------------------
def write_rows(chunks: Iterable[pd.DataFrame], out: str | Path) -> int:
    """Stream `chunks` (BATCH_COLUMNS) into `out` as parquet, csv or jsonl (by its suffix), atomically.

    Returns the number of rows written. Nothing appears under `out` unless every chunk was written.
    """
    kind = output_format(out)
    with atomic_file(out) as fh:
        if kind == ".parquet":
            return _write_parquet(chunks, fh)
        total = 0
        for n, chunk in enumerate(chunks):
            if kind == ".csv":
                fh.write(chunk.to_csv(index=False, header=n == 0, lineterminator="\n").encode("utf-8"))
            elif len(chunk):
                text = chunk.to_json(orient="records", lines=True, force_ascii=False)
                fh.write(text.rstrip("\n").encode("utf-8") + b"\n")
            total += len(chunk)
        if kind == ".csv" and total == 0:
            fh.write((",".join(BATCH_COLUMNS) + "\n").encode("utf-8"))
        return total


def _write_parquet(chunks: Iterable[pd.DataFrame], fh: BinaryIO) -> int:
    total = 0
    with pq.ParquetWriter(fh, BATCH_SCHEMA) as writer:
        for chunk in chunks:
            table = pa.Table.from_pandas(chunk[list(BATCH_COLUMNS)], schema=BATCH_SCHEMA, preserve_index=False)
            writer.write_table(table)
            total += len(chunk)
    return total


def read_rows(path: str | Path) -> pd.DataFrame:
    """A batch output file read back (any of the three formats), with the batch column types."""
    kind = output_format(path)
    if kind == ".parquet":
        return pd.read_parquet(path)
    if kind == ".csv":
        frame = pd.read_csv(path, dtype={"user_id": str, "item_id": str, "because_item_id": str})
    else:
        text = Path(path).read_text(encoding="utf-8")
        frame = pd.read_json(io.StringIO(text), lines=True, dtype={"user_id": str, "item_id": str}) if text else None
        if frame is None or frame.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in BATCH_COLUMNS})
    return frame.astype({"score": float, "rank": int})


# -- the front door ----------------------------------------------------------------------------------------
def export_recommendations(
    model: str | Path | Recommender,
    *,
    out: str | Path,
    users: str | Path | Sequence[object] = ALL_USERS,
    settings: BatchSettings | None = None,
    reporter: Reporter | None = None,
) -> BatchResult:
    """Write the top-`k` items of every user (or of `users`) to `out` (.parquet, .csv or .jsonl).

    Args:
        model: a model folder made by `zsrec train`, or a fitted model.
        users: "all", a file of user ids (see `read_user_ids`) or a list of ids.

    Raises:
        ConfigError: a bad `out` (checked before any work), an unknown user id or category, a model saved
            without its ids.
    """
    settings = settings or BatchSettings()
    reporter = reporter or SilentReporter()
    check_out_writable(out)
    output_format(out)
    started = time.perf_counter()
    fitted = load_model(model) if isinstance(model, str | Path) else model
    wanted = read_user_ids(users, model_ids(fitted))
    with reporter.progress(f"recommending {settings.k} items", len(wanted)) as advance:
        rows = write_rows(iter_recommendations(fitted, wanted, settings, advance=advance), out)
    return BatchResult(Path(out), len(wanted), rows, time.perf_counter() - started)


def user_ranking(
    model_dir: str | Path,
    user_id: str,
    *,
    k: int = 10,
    new_only: bool = False,
    categories: Sequence[str] | None = None,
    because: int = 3,
) -> dict[str, Any]:
    """One user's top-`k` in the form of the service's `/recommend` answer: `{"items": [{item_id, title,
    category, score, because: [{item_id, title, contribution}]}]}`; titles come from the folder's catalog
    (empty where the folder has none)."""
    model = load_model(model_dir)
    settings = BatchSettings(k=k, new_only=new_only, categories=tuple(categories) if categories else None)
    rows = next(iter_recommendations(model, [str(user_id)], settings), None)
    ids = model_ids(model)
    user = int(user_indexes(ids, [str(user_id)])[0])
    position = {str(item): n for n, item in enumerate(ids.items)}
    items = np.asarray([position[i] for i in rows["item_id"]], dtype=np.int64) if rows is not None else []
    reasons: list[list[tuple[int, float]]] = [[] for _ in items]
    if isinstance(model, Explainable) and len(items) and len(model.histories_[user]):
        reasons = model.explain(user, items, because)
    titles = _titles(Path(model_dir), [ids.items[i] for i in items] + [ids.items[h] for r in reasons for h, _ in r])
    answer = []
    for n, item in enumerate(items):
        answer.append(
            {
                "item_id": str(ids.items[item]),
                "title": titles.get(str(ids.items[item]), ""),
                "category": str(ids.categories[item]),
                "score": float(rows["score"].iloc[n]),
                "because": [
                    {"item_id": str(ids.items[h]), "title": titles.get(str(ids.items[h]), ""), "contribution": c}
                    for h, c in reasons[n]
                ],
            }
        )
    return {"items": answer}


def _titles(folder: Path, item_ids: Iterable[str]) -> dict[str, str]:
    """Titles of `item_ids` from the folder's service catalog; empty for a folder without one."""
    if not (folder / DATABASE).is_file():
        return {}
    store = CatalogStore(folder / DATABASE)
    try:
        details = {str(i): store.item_details(str(i)) for i in item_ids}
        return {i: d.title for i, d in details.items() if d is not None}
    finally:
        store.close()
