"""Folder manifests: `manifest.json` records each file's size and SHA-256 (and each `.npy` array's dtype and
shape), written last when a model or service folder is saved, and checked before the folder is read.

A corrupted, truncated or swapped file is then one line naming the file, instead of a traceback from numpy,
safetensors or json deep inside a load, or (worse) vectors full of NaN that score as if nothing happened.

What a running service changes is not hashed: `service.db` (and its WAL files) is the service's live source of
truth and `index/` holds snapshots it rewrites, so a hash taken at training time would be wrong after the first
`POST /items`. The manifest lists them under "live" instead, and the SQLite file is checked by its own
integrity check (`PRAGMA quick_check`) and schema when the folder is opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from zsrec._version import __version__
from zsrec.errors import CorruptModelError
from zsrec.io import atomic_write_text

MANIFEST_FILE = "manifest.json"
FORMAT = 1
#: files and folders a running service rewrites: checked for integrity, not by hash
LIVE_FILES = ("service.db", "service.db-wal", "service.db-shm", "service.db-journal")
LIVE_FOLDERS = ("index",)
SQLITE_FILE = "service.db"
_CHUNK = 1 << 20

logger = logging.getLogger("zsrec")


def write_manifest(folder: str | Path) -> Path:
    """Write `folder/manifest.json` describing every static file under `folder` (call it last)."""
    folder = Path(folder)
    files = {rel: describe_file(folder / rel) for rel in _static_files(folder)}
    live = [name for name in LIVE_FILES if (folder / name).is_file() and name == SQLITE_FILE]
    document = {"format": FORMAT, "zsrec_version": __version__, "files": files, "live": live}
    path = folder / MANIFEST_FILE
    atomic_write_text(path, json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path


def describe_file(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of one file; for a `.npy`, also its dtype and shape (read from its header)."""
    entry: dict[str, Any] = {"size": path.stat().st_size, "sha256": sha256_of(path)}
    if path.suffix == ".npy":
        dtype, shape = npy_header(path)
        entry["dtype"], entry["shape"] = dtype.str, list(shape)
    return entry


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_folder(folder: str | Path, *, what: str = "model folder") -> bool:
    """Check `folder` against its manifest, and every `.npy` header against its size.

    Returns False (after logging a warning) for a folder written before manifests existed; True when the
    manifest matched. Raises CorruptModelError naming the first file that is missing, changed or unreadable.
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        for npy in sorted(folder.rglob("*.npy")):
            npy_header(npy)  # still catch a truncated or random file with a clear line
        logger.warning(f"{folder} has no {MANIFEST_FILE} (written by an older zsrec); its files are not verified")
        return False
    files, live = _read_manifest(path)
    for rel, entry in files.items():
        _check_entry(folder, rel, entry)
    extra = sorted(set(_static_files(folder)) - set(files))
    if extra:
        raise CorruptModelError(f"{folder / extra[0]}: not listed in {path}; the {what} was changed after saving")
    for name in live:
        check_sqlite(folder / name)
    return True


def _read_manifest(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptModelError(f"{path}: not a readable manifest ({err})") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CorruptModelError(f"{path}: unknown manifest format; expected format {FORMAT}")
    files, live = document.get("files"), document.get("live", [])
    entries_ok = isinstance(files, dict) and all(isinstance(v, dict) for v in files.values())
    if not entries_ok or not isinstance(live, list):
        raise CorruptModelError(f"{path}: malformed manifest (files must map names to entries)")
    for rel in [*files, *live]:
        if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise CorruptModelError(f"{path}: file name {rel!r} points outside the folder")
    return files, [str(name) for name in live]


def _check_entry(folder: Path, rel: str, entry: dict[str, Any]) -> None:
    path = folder / rel
    if not path.is_file():
        raise CorruptModelError(f"{path}: missing (listed in {folder / MANIFEST_FILE})")
    size = path.stat().st_size
    if size != entry.get("size"):
        raise CorruptModelError(f"{path}: {size:,} bytes, the manifest says {entry.get('size')} (truncated or changed)")
    if path.suffix == ".npy":
        dtype, shape = npy_header(path)
        if dtype.str != entry.get("dtype") or list(shape) != entry.get("shape"):
            raise CorruptModelError(
                f"{path}: array {dtype.str} {tuple(shape)}, the manifest says {entry.get('dtype')} "
                f"{tuple(entry.get('shape') or ())}"
            )
    if sha256_of(path) != entry.get("sha256"):
        raise CorruptModelError(f"{path}: content differs from the manifest (SHA-256 mismatch); the file was changed")


def npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """dtype and shape from a `.npy` header, checked against the file's size; CorruptModelError if it is not
    a pickle-free `.npy` file of that size (numpy's own message for random bytes wrongly blames pickling)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            version = fmt.read_magic(fh)
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = reader(fh, max_header_size=10_000)
            data_start = fh.tell()
    except (ValueError, OSError, SyntaxError, EOFError) as err:
        if isinstance(err, PermissionError):
            raise
        raise CorruptModelError(
            f"{path}: not a .npy array file (random bytes, truncated, or not saved by numpy)"
        ) from err
    del fortran
    if dtype.hasobject:
        raise CorruptModelError(f"{path}: holds Python objects (it would need pickle); zsrec never loads those")
    expected = data_start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise CorruptModelError(
            f"{path}: {actual:,} bytes, but its header declares a {dtype.str} array of shape {tuple(shape)} "
            f"({expected:,} bytes); the file is truncated or damaged"
        )
    return dtype, tuple(int(n) for n in shape)


def check_sqlite(path: Path) -> None:
    """A readable SQLite file with zsrec's store tables that passes `PRAGMA quick_check` (read-only)."""
    if not path.is_file():
        raise CorruptModelError(f"{path}: missing; the service folder needs it (train the model again)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise CorruptModelError(f"{path}: not a readable SQLite database ({err})") from err
    if result != "ok":
        raise CorruptModelError(f"{path}: SQLite integrity check failed ({result})")
    missing = {"meta", "items", "users", "events"} - tables
    if missing:
        raise CorruptModelError(f"{path}: not a zsrec service store (no table {sorted(missing)[0]!r})")


def _static_files(folder: Path) -> Iterator[str]:
    """Relative paths of the files the manifest hashes: everything but itself, live files and temporaries."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or rel.parts[0] in LIVE_FOLDERS or rel.as_posix() in (MANIFEST_FILE, *LIVE_FILES):
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue
        yield rel.as_posix()


def check_store_vectors(path: Path, dim: int, *, chunk: int = 4096) -> int:
    """Every live item vector in the service store has `dim` float32 values, all finite; returns their count."""
    count = 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT item_id, vector FROM items WHERE vector IS NOT NULL")
            while batch := rows.fetchmany(chunk):
                for item_id, blob in batch:
                    vector = np.frombuffer(blob, dtype="<f4") if len(blob) == 4 * dim else None
                    if vector is None or not np.isfinite(vector).all():
                        raise CorruptModelError(
                            f"{path}: item {item_id!r} has a damaged vector (not {dim} finite float32 values)"
                        )
                count += len(batch)
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise CorruptModelError(f"{path}: not a readable SQLite database ({err})") from err
    return count
