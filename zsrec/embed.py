"""A catalog's item texts to vectors, written as parquet: what `zsrec embed` runs.

The output has one row per item: `item_id` (string) and `vector` (a fixed-size list of float32, unit length),
with the encoder's id and spec, the item text template and the precision in the file's metadata, so a reader
can tell which vectors may be compared with which.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec._version import __version__
from zsrec.data import dataset_of
from zsrec.data.dataset import Dataset
from zsrec.encoders import EmbeddingCache, load_encoder_lazily, with_precision
from zsrec.encoders.loading import PRECISIONS
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.io import check_out_writable
from zsrec.reporting import Reporter, SilentReporter

ENGINES: tuple[str, ...] = ("local", "spark")
META_PREFIX = "zsrec."


@dataclass(frozen=True)
class EmbedSettings:
    """How items become vectors."""

    # Encoder spec ("minilm", "mpnet", a model folder, ...), without a precision.
    encoder: str = "minilm"
    # "fp32" (torch) or "int8" (ONNX Runtime, MatMul weights in int8).
    precision: str = "fp32"
    # "local" (this process) or "spark".
    engine: str = "local"
    # How an item row becomes one text.
    template: ItemTextTemplate = field(default_factory=ItemTextTemplate)
    # Read and add to the embedding cache; False neither reads nor writes it (honest timings).
    use_cache: bool = True
    # The embedding cache folder; None for the default (`$ZSREC_CACHE_DIR` or ~/.cache/zsrec/embeddings).
    cache_dir: str | None = None
    # Spark master for engine "spark"; None: $SPARK_MASTER, else local[*].
    spark_master: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, str) or not self.encoder.strip():
            raise ConfigError(f"encoder must be a non-empty spec, got {self.encoder!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {ENGINES}, got {self.engine!r}")

    @property
    def spec(self) -> str:
        """The encoder spec at this precision, e.g. "minilm@int8"."""
        return with_precision(self.encoder, self.precision)


@dataclass(frozen=True)
class ItemVectors:
    """Item ids and their vectors (row i is item_ids[i]), and what made them."""

    item_ids: list[str]
    vectors: np.ndarray  # (n_items, dim) float32, unit rows (zero for an item without any text)
    encoder_id: str
    settings: EmbedSettings
    n_empty: int  # items whose text was empty

    def metadata(self) -> dict[str, str]:
        s = self.settings
        return {
            "encoder_id": self.encoder_id,
            "encoder": s.spec,
            "precision": s.precision,
            "template": json.dumps(s.template.to_dict(), sort_keys=True),
            "dim": str(self.vectors.shape[1]),
            "zsrec_version": __version__,
        }


SparkEngine = Callable[[pd.DataFrame, EmbedSettings], ItemVectors]


def embed_items(
    items: pd.DataFrame, settings: EmbedSettings, *, show_progress: bool = False, spark: SparkEngine | None = None
) -> ItemVectors:
    """Vectors of the catalog rows `items` (a `Dataset.items` frame), in row order.

    Args:
        show_progress: draw a progress bar on stderr while texts are encoded.
        spark: the Spark engine for `settings.engine == "spark"` (`zsrec.scale.spark.embed_on_spark`, which sits
            above this module).
    """
    if settings.engine == "spark":
        return spark_engine(spark)(items, settings)
    texts = settings.template.render(items)
    filled = [i for i, t in enumerate(texts) if t.strip()]
    encoder = load_encoder_lazily(settings.spec)
    chosen = [texts[i] for i in filled]
    if settings.use_cache:
        cache = EmbeddingCache(settings.cache_dir)
        found = cache.encode(encoder, chosen, namespace=settings.template.id, show_progress=show_progress)
    else:
        found = encoder.encode(chosen, show_progress=show_progress)
    vectors = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    vectors[filled] = found
    item_ids = items["item_id"].astype(str).tolist()
    return ItemVectors(item_ids, vectors, encoder.model_id, settings, n_empty=len(texts) - len(filled))


def spark_engine(spark: SparkEngine | None) -> SparkEngine:
    """The Spark engine's embedding function, or ConfigError where none was given."""
    if spark is None:
        raise ConfigError("engine spark needs zsrec.scale.spark.embed_on_spark (pass it as spark=)")
    return spark


def embed_dataset(
    dataset: str | Dataset,
    out: str | Path,
    settings: EmbedSettings,
    *,
    reporter: Reporter | None = None,
    show_progress: bool = False,
    spark: SparkEngine | None = None,
) -> ItemVectors:
    """Embed every item of `dataset` (a path or spec as `load_dataset` takes, or a Dataset) into parquet `out`.

    `out` is checked before any work and written atomically: it appears only once complete.
    """
    reporter = reporter or SilentReporter()
    check_out_writable(out)
    if settings.engine == "spark":
        spark_engine(spark)  # an engine that is not there fails before any work
    load_encoder_lazily(settings.spec)  # a bad encoder fails before the dataset is read
    data = dataset_of(dataset, reporter)
    result = embed_items(data.items, settings, show_progress=show_progress, spark=spark)
    if result.n_empty:
        reporter.warning(f"{result.n_empty} items have no text: their vectors are zero")
    write_vectors(out, result)
    return result


def write_vectors(out: str | Path, result: ItemVectors) -> None:
    """Write `result` as parquet at `out` (temporary file in the same folder, then `os.replace`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = np.ascontiguousarray(result.vectors, dtype=np.float32)
    dim = vectors.shape[1]
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), dim)
    table = pa.table({"item_id": pa.array(result.item_ids, type=pa.string()), "vector": column})
    meta = {f"{META_PREFIX}{k}".encode(): v.encode() for k, v in result.metadata().items()}
    table = table.replace_schema_metadata(meta)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the output private to its writer
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_vectors(path: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """(frame of item_id and vector, the zsrec metadata without its prefix) of a file `write_vectors` wrote."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = table.schema.metadata or {}
    meta = {k.decode()[len(META_PREFIX) :]: v.decode() for k, v in raw.items() if k.startswith(META_PREFIX.encode())}
    return table.to_pandas(), meta
