"""An on-disk embedding cache that only adds immutable shard files, so crashes and parallel runs are safe.

Layout: `<directory>/<bucket>/shard-*.npy`, one bucket per (encoder model_id, kind, namespace), described by
its `meta.json`. A shard is one structured `.npy` array of (16-byte blake2b of the text, float32 vector)
records, written to a temporary name and `os.replace`d into place, so a shard is either whole or absent and
one rename commits keys and vectors together. Shards are memory-mapped, never merged into one in-memory
copy. Readers only list `shard-*.npy` (temporary files start with a
dot). When a bucket holds more than `max_shards` files, the process that notices writes one merged shard and
then deletes only the shards it has read, which the merged shard already contains: nothing is lost if two
processes compact at once (an advisory lock makes it one at a time); at worst an entry is stored twice, and
lookups read the newest copy.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsrec.encoders.base import Kind, TextEncoder, check_kind, check_texts
from zsrec.io import atomic_save_npy, atomic_write_text

KEY_BYTES = 16
FORMAT_VERSION = 1
_STALE_TMP_SECONDS = 3600.0


def default_cache_dir() -> Path:
    """`$ZSREC_CACHE_DIR` when set, else `~/.cache/zsrec/embeddings`."""
    env = os.environ.get("ZSREC_CACHE_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "zsrec" / "embeddings"


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """16-byte blake2b digests of the UTF-8 texts, as an (n,) `S16` array (sortable, comparable)."""
    raw = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=KEY_BYTES).digest() for t in texts)
    return np.frombuffer(raw, dtype=f"S{KEY_BYTES}").copy()


def shard_dtype(dim: int) -> np.dtype:
    return np.dtype([("key", "u1", (KEY_BYTES,)), ("vector", "<f4", (dim,))])


class EmbeddingCache:
    """Embeddings on disk, keyed by encoder `model_id`, kind, namespace and a hash of the text.

    >>> cache = EmbeddingCache(tmp_dir)                                    # doctest: +SKIP
    >>> vectors = cache.encode(encoder, texts, namespace=template.id)     # doctest: +SKIP

    Args:
        directory: where buckets live; default `default_cache_dir()`.
        max_shards: shard files a bucket may hold before they are merged into one (default 64).

    Attributes:
        hits, misses: distinct texts of the last `encode` call found in the cache / sent to the encoder.
    """

    def __init__(self, directory: str | Path | None = None, *, max_shards: int = 64) -> None:
        if max_shards < 2:
            raise ValueError(f"max_shards must be >= 2, got {max_shards}")
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.max_shards = max_shards
        self.hits = 0
        self.misses = 0
        self._buckets: dict[Path, _Bucket] = {}

    def encode(
        self,
        encoder: TextEncoder,
        texts: Sequence[str],
        *,
        kind: Kind = "passage",
        namespace: str = "",
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embeddings of `texts` (float32, (n, encoder.dim)), encoding only texts not cached yet.

        Repeated texts within the call are encoded once. `namespace` separates otherwise equal keys, e.g.
        a template id; the text hash alone already tells different texts apart.
        """
        check_kind(kind)
        texts = check_texts(texts)
        bucket = self._bucket(encoder, kind, namespace)
        keys = text_keys(texts)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        bucket.refresh()
        found, vectors = bucket.lookup(unique)
        missing = np.flatnonzero(~found)
        if missing.size:
            new = encoder.encode([texts[i] for i in first[missing]], kind=kind, show_progress=show_progress)
            vectors[missing] = new
            bucket.add(unique[missing], new)
            bucket.compact_if_needed(self.max_shards)
        self.hits, self.misses = int(found.sum()), int(missing.size)
        return vectors[inverse.reshape(-1)]

    def _bucket(self, encoder: TextEncoder, kind: str, namespace: str) -> _Bucket:
        ident = json.dumps([encoder.model_id, kind, namespace], ensure_ascii=False)
        digest = hashlib.blake2b(ident.encode("utf-8"), digest_size=8).hexdigest()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder.model_id)[:48].strip("_.")
        path = self.directory / f"{slug}-{kind}-{digest}"
        if path not in self._buckets:
            path.mkdir(parents=True, exist_ok=True)
            meta = path / "meta.json"
            if not meta.exists():
                info = {"model_id": encoder.model_id, "kind": kind, "namespace": namespace,
                        "dim": encoder.dim, "format": FORMAT_VERSION}
                atomic_write_text(meta, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
            self._buckets[path] = _Bucket(path, encoder.dim)
        return self._buckets[path]


@dataclass(frozen=True)
class _Shard:
    """One shard file, memory-mapped: its keys sorted in memory (24 bytes an entry), its vectors on disk."""

    name: str
    keys: np.ndarray  # (n,) S16, sorted
    rows: np.ndarray  # (n,) int64: the record of each sorted key
    vectors: np.ndarray  # (n, dim) float32, a view of the mapped records


class _Bucket:
    """The shards of one (model_id, kind, namespace), each memory-mapped rather than copied into memory, so a
    million cached vectors cost their keys in memory and their pages in the OS page cache."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.dtype = shard_dtype(dim)
        self.shards: dict[str, _Shard] = {}
        self.skipped: set[str] = set()

    @property
    def loaded(self) -> set[str]:
        return set(self.shards)

    def shard_names(self) -> list[str]:
        names = (e.name for e in os.scandir(self.path))
        return sorted(n for n in names if n.startswith("shard-") and n.endswith(".npy"))

    def refresh(self) -> None:
        """Map shards written since the last refresh (by this or another process); forget merged-away ones."""
        for _attempt in range(3):
            names = self.shard_names()
            present = set(names)
            # A shard is deleted only after a merged shard holding its entries was written: drop our mapping
            # (still readable, but a duplicate) and read the newer shard below.
            for gone in [n for n in self.shards if n not in present]:
                del self.shards[gone]
            vanished = False
            for name in names:
                if name in self.shards or name in self.skipped:
                    continue
                shard = self._read(name)
                if shard is None:
                    vanished = vanished or not (self.path / name).exists()
                    continue
                self.shards[name] = shard
            if not vanished:  # a shard merged away by another process: its content is in a newer shard
                return

    def _read(self, name: str) -> _Shard | None:
        try:
            records = np.load(self.path / name, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError) as exc:
            self._skip(name, f"unreadable ({type(exc).__name__}: {exc})")
            return None
        if records.dtype != self.dtype or records.ndim != 1:
            self._skip(name, f"has dtype {records.dtype} and shape {records.shape}, expected {self.dtype}")
            return None
        keys = np.ascontiguousarray(records["key"]).view(f"S{KEY_BYTES}").reshape(-1)
        rows = np.argsort(keys, kind="stable")
        return _Shard(name, keys[rows], rows, records["vector"])

    def _skip(self, name: str, why: str) -> None:
        self.skipped.add(name)
        msg = f"embedding cache: skipping shard {self.path / name}: {why}"
        warnings.warn(msg, RuntimeWarning, stacklevel=4)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, vectors) for sorted unique `keys`; rows not found are zero."""
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for shard in sorted(self.shards.values(), key=lambda s: s.name, reverse=True):  # newest first
            todo = np.flatnonzero(~found)
            if not todo.size:
                break
            if not len(shard.keys):
                continue
            pos = np.minimum(np.searchsorted(shard.keys, keys[todo]), len(shard.keys) - 1)
            hit = shard.keys[pos] == keys[todo]
            rows = shard.rows[pos[hit]]
            order = np.argsort(rows)  # read the mapped file front to back
            out[todo[hit][order]] = shard.vectors[rows[order]]
            found[todo[hit]] = True
        return found, out

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Write one new shard and map it."""
        name = self._write(keys, vectors)
        shard = self._read(name)
        if shard is not None:
            self.shards[name] = shard

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> str:
        records = np.empty(len(keys), dtype=self.dtype)
        records["key"] = np.frombuffer(keys.tobytes(), dtype=np.uint8).reshape(-1, KEY_BYTES)
        records["vector"] = vectors
        # time first, so names sort roughly by age; pid + random part keep parallel writers apart
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy"
        atomic_save_npy(self.path / name, records)
        return name

    def compact_if_needed(self, max_shards: int) -> None:
        """Merge everything read so far into one shard once the bucket holds more than `max_shards` files.

        One process compacts a bucket at a time (an advisory lock; a process that finds it taken skips, the
        holder is merging anyway). Without the lock it would still be safe, only wasteful: a shard is deleted
        only once a merged shard with its entries is in place.
        """
        if len(self.shard_names()) <= max_shards:
            return
        with _try_lock(self.path / ".compact.lock") as locked:
            if not locked:
                return
            self.refresh()
            keys = np.concatenate([np.empty(0, dtype=f"S{KEY_BYTES}"), *(s.keys for s in self.shards.values())])
            unique = np.unique(keys)
            _, vectors = self.lookup(unique)
            merged = self._write(unique, vectors)
            # Delete only shards whose content is now in `merged`; one that appeared meanwhile stays.
            for name in self.loaded - {merged}:
                (self.path / name).unlink(missing_ok=True)
            self.shards = {}
            self.refresh()
            self._remove_stale_temp_files()

    def _remove_stale_temp_files(self) -> None:
        """Temporary files older than an hour were left by killed writers; a live writer's are fresh."""
        now = time.time()
        for entry in os.scandir(self.path):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                try:
                    if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass


@contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    """An exclusive advisory lock on `path` if free right now (True), else False; released on exit."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
