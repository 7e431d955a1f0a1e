"""The batch export and catalog embedding as PySpark jobs, for user bases and catalogs beyond one machine.

- `spark_recommend(model_dir, out=...)`: the rows of `zsrec.batch.export_recommendations`, scored on the
  executors. The model folder is shipped to every executor (`SparkContext.addFile`); each Python worker loads it
  once (its vectors memory-mapped) and scores its partitions of user ids with `mapInPandas`, in the same
  memory-bounded chunks as the local path. Spark writes the partitions as parquet into a temporary folder beside
  `out`; the driver then streams them, in order, into `out` with the local writer (same schema, same atomic
  rename). On a cluster that folder must be on storage the executors and the driver share.
- `spark_embed(items, encoder)`: item texts to L2-normalised float32 vectors, one encoder per Python worker,
  one torch thread per task, so that Spark's task slots, not a BLAS thread pool, do the scaling.

The zsrec package is shipped to the executors as a zip (`addPyFile`) unless it is installed there already
(spark-submit --py-files with the wheel). The session is stopped when the job ends, unless the caller passed
its own `spark` session.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zsrec.batch import (
    ALL_USERS,
    BATCH_COLUMNS,
    BatchResult,
    BatchSettings,
    output_format,
    read_user_ids,
    recommend_chunk,
    write_rows,
)
from zsrec.embed import EmbedSettings, ItemVectors
from zsrec.encoders.loading import PRECISIONS, load_encoder, with_precision
from zsrec.errors import ConfigError
from zsrec.io import check_out_writable
from zsrec.models.base import Recommender
from zsrec.models.ids import candidate_items, model_ids, user_indexes
from zsrec.models.registry import load_model
from zsrec.reporting import Reporter, SilentReporter
from zsrec.vectors import l2_normalize

SPARK_MASTER_ENV = "SPARK_MASTER"
DEFAULT_MASTER = "local[*]"
BATCH_DDL = "user_id string, item_id string, score double, rank long, because_item_id string"
VECTOR_DDL = "item_id string, vector array<float>"

# Per Python worker (Spark reuses workers between tasks): the loaded model folders and encoders.
_MODELS: dict[str, Recommender] = {}
_ENCODERS: dict[str, Any] = {}


def spark_master(master: str | None = None) -> str:
    """`master`, else $SPARK_MASTER, else local[*]."""
    return master or os.environ.get(SPARK_MASTER_ENV, "").strip() or DEFAULT_MASTER


@contextmanager
def spark_session(master: str | None = None, *, spark: Any = None, app_name: str = "zsrec") -> Iterator[Any]:
    """A SparkSession for one job, with zsrec shipped to its executors; stopped on exit. A given `spark` is
    used as it is (zsrec shipped to it once) and left running."""
    if spark is not None:
        _ship_package(spark)
        yield spark
        return
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ConfigError("--engine spark needs pyspark (pip install 'zsrec[spark]') and Java 17") from err
    # the executors' Python must be this one, with numpy, torch and zsrec's other dependencies
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(spark_master(master))
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
        # one BLAS/OpenMP thread per task: the task slots are the parallelism
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")
        .config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
        .config("spark.executorEnv.MKL_NUM_THREADS", "1")
    )
    # pyspark 4.3 warns on every pandas conversion that it is not tested with pandas 3; the conversions used here
    # (flat string, number and float-list columns) are checked by the parity tests
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    session = builder.getOrCreate()
    try:
        _ship_package(session)
        yield session
    finally:
        session.stop()


def _ship_package(spark: Any) -> None:
    """Add this zsrec package, zipped, to the executors' Python path (once per session)."""
    conf = spark.sparkContext.getConf()
    if conf.get("spark.zsrec.shipped", "") == "1" or getattr(spark, "_zsrec_shipped", False):
        return
    package = Path(__file__).resolve().parents[1]
    archive = Path(tempfile.mkdtemp(prefix="zsrec-spark-")) / "zsrec.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("zsrec") / path.relative_to(package))
    spark.sparkContext.addPyFile(str(archive))
    spark._zsrec_shipped = True


# -- scoring every user ------------------------------------------------------------------------------------
def spark_recommend(
    model_dir: str | Path,
    *,
    out: str | Path,
    users: str | Path | Sequence[object] = ALL_USERS,
    settings: BatchSettings | None = None,
    master: str | None = None,
    partitions: int | None = None,
    reporter: Reporter | None = None,
    spark: Any = None,
) -> BatchResult:
    """`zsrec.batch.export_recommendations` on Spark: the same rows, in the same order, in the same file formats.

    Args:
        partitions: user partitions (tasks); default twice the session's default parallelism.
        spark: an existing SparkSession to run in (kept running); default one on `master` for this job.
    """
    settings = settings or BatchSettings()
    reporter = reporter or SilentReporter()
    check_out_writable(out)
    output_format(out)
    started = time.perf_counter()
    folder = Path(model_dir).resolve()
    model = load_model(folder)  # on the driver: the ids, and every user id and category checked before the job
    wanted = read_user_ids(users, model_ids(model))
    user_indexes(model_ids(model), wanted)
    candidate_items(model, new_only=settings.new_only, categories=settings.categories)
    staging = Path(tempfile.mkdtemp(prefix=f".{Path(out).name}.", suffix=".spark", dir=Path(out).parent))
    try:
        with spark_session(master, spark=spark, app_name="zsrec recommend") as session:
            with reporter.progress(f"scoring {len(wanted):,} users on spark", None):
                _score_on_spark(session, folder, wanted, settings, partitions, staging / "rows")
        parts = sorted((staging / "rows").glob("part-*.parquet"))
        rows = write_rows((pd.read_parquet(p)[list(BATCH_COLUMNS)] for p in parts), out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BatchResult(Path(out), len(wanted), rows, time.perf_counter() - started)


def _score_on_spark(
    spark: Any, folder: Path, wanted: list[str], settings: BatchSettings, partitions: int | None, into: Path
) -> None:
    sc = spark.sparkContext
    sc.addFile(str(folder), recursive=True)
    n = partitions or max(1, 2 * sc.defaultParallelism)
    frame = pd.DataFrame({"user_id": wanted})
    # one contiguous range of users per partition, so that the part files in name order are the users' order
    users = spark.createDataFrame(frame.assign(seq=np.arange(len(frame))), "user_id string, seq long")
    users = users.repartitionByRange(min(n, max(1, len(frame))), "seq").sortWithinPartitions("seq").drop("seq")
    scored = users.mapInPandas(_score_partition(folder.name, settings), BATCH_DDL)
    scored.write.mode("overwrite").parquet(str(into))


def _score_partition(folder_name: str, settings: BatchSettings) -> Callable[[Iterator[pd.DataFrame]], Iterator]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import SparkFiles
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            model = _worker_model(SparkFiles.get(folder_name))
            ids = model_ids(model)
            candidates = candidate_items(model, new_only=settings.new_only, categories=settings.categories)
            step = settings.chunk_users(len(candidates))
            for batch in batches:
                wanted = batch["user_id"].astype(str).tolist()
                users = user_indexes(ids, wanted)
                for start in range(0, len(users), step):
                    rows = recommend_chunk(
                        model, users[start : start + step], wanted[start : start + step], candidates, settings
                    )
                    yield rows.astype({"rank": np.int64})

    return run


def _worker_model(path: str) -> Recommender:
    if path not in _MODELS:
        _MODELS[path] = load_model(path)
    return _MODELS[path]


# -- embedding a catalog -----------------------------------------------------------------------------------
def spark_embed(
    items: pd.DataFrame,
    encoder: str,
    *,
    precision: str = "fp32",
    master: str | None = None,
    partitions: int | None = None,
    spark: Any = None,
) -> pd.DataFrame:
    """Encode `items` (columns item_id, text) on Spark: item_id and vector (a float32 list, L2-normalised), in
    the order of `items`.

    Each task loads the encoder once per Python worker (`zsrec.encoders.loading.load_encoder(encoder)`) and runs
    it on one thread.

    Raises:
        ConfigError: an unknown precision, or items without the item_id and text columns.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    missing = {"item_id", "text"} - set(items.columns)
    if missing:
        raise ConfigError(f"items need columns item_id and text; missing {', '.join(sorted(missing))}")
    frame = items[["item_id", "text"]].astype(str).reset_index(drop=True)
    if frame.empty:
        return pd.DataFrame({"item_id": pd.Series(dtype=object), "vector": pd.Series(dtype=object)})
    with spark_session(master, spark=spark, app_name="zsrec embed") as session:
        n = partitions or max(1, session.sparkContext.defaultParallelism)
        df = session.createDataFrame(frame.assign(seq=np.arange(len(frame))), "item_id string, text string, seq long")
        df = df.repartitionByRange(min(n, len(frame)), "seq").sortWithinPartitions("seq").drop("seq")
        result = df.mapInPandas(_encode_partition(with_precision(encoder, precision)), VECTOR_DDL).toPandas()
    result["vector"] = [np.asarray(v, dtype=np.float32) for v in result["vector"]]
    return result


def embed_on_spark(items: pd.DataFrame, settings: EmbedSettings) -> ItemVectors:
    """`zsrec.embed.embed_items` on Spark: the catalog rows `items` encoded by `spark_embed`, as ItemVectors.

    The embedding cache is not used (the executors encode every text), so `settings.use_cache` has no effect.
    """
    texts = settings.template.render(items)
    filled = [i for i, t in enumerate(texts) if t.strip()]
    frame = pd.DataFrame({"item_id": np.asarray(filled).astype(str), "text": [texts[i] for i in filled]})
    found = spark_embed(frame, settings.encoder, precision=settings.precision, master=settings.spark_master)
    encoder = load_encoder(with_precision(settings.encoder, settings.precision))
    vectors = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    if len(found):
        vectors[[int(i) for i in found["item_id"]]] = np.stack(found["vector"].to_list())
    item_ids = items["item_id"].astype(str).tolist()
    return ItemVectors(item_ids, vectors, encoder.model_id, settings, n_empty=len(texts) - len(filled))


def _encode_partition(spec: str) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from threadpoolctl import threadpool_limits

        _one_torch_thread()
        with threadpool_limits(limits=1):
            if spec not in _ENCODERS:
                _ENCODERS[spec] = load_encoder(spec)
            encoder = _ENCODERS[spec]
            for batch in batches:
                vectors = l2_normalize(np.asarray(encoder.encode(batch["text"].tolist(), kind="passage")))
                yield pd.DataFrame({"item_id": batch["item_id"], "vector": list(vectors.astype(np.float32))})

    return run


def _one_torch_thread() -> None:
    try:
        import torch
    except ImportError:  # an encoder without torch (the hashing one) needs no limit
        return
    torch.set_num_threads(1)
