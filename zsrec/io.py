"""Atomic file writes and pickle-free array storage: nothing half-written is ever left under a final name."""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from zsrec.errors import ConfigError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it, which races threads


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in `path`'s folder with ordinary permissions (mkstemp alone gives 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, tmp


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write that appears under `path` only when the block ends without an error: written
    to a temporary name in the same folder, synced, then `os.replace`d (removed on any failure)."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and `os.replace`."""
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    """`np.save` through a temporary file; object arrays are refused (they would need pickle)."""
    array = np.asarray(array)
    if array.dtype == object:
        raise TypeError(f"refusing to save an object array to {path}: it would need pickle")
    with atomic_file(path) as fh:
        np.save(fh, array, allow_pickle=False)


def save_arrays(directory: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Save each array as `<name>.npy` in `directory`."""
    for name, array in arrays.items():
        atomic_save_npy(Path(directory) / f"{name}.npy", array)


#: arrays at least this large are memory-mapped on load rather than read into memory
MMAP_MIN_BYTES = 1 << 20


def load_npy(path: str | Path, *, mmap_min_bytes: int = MMAP_MIN_BYTES) -> np.ndarray:
    """Read one `.npy` without pickle; a large one is memory-mapped copy-on-write (see `is_mapped`).

    Mapped, its pages come from the OS page cache as they are touched and are shared between processes that
    read the same file, so a million vectors are never one private in-memory copy per stage or per worker.
    Copy-on-write (`mmap_mode="c"`): code that updates a loaded array in place changes its own pages only,
    never the file.
    """
    path = Path(path)
    if path.stat().st_size >= mmap_min_bytes:
        # a plain ndarray over the mapping (which its `base` keeps open): np.memmap's subclass hooks cost
        # microseconds on every slice, which adds up in per-user loops
        return np.load(path, mmap_mode="c", allow_pickle=False).view(np.ndarray)
    return np.load(path, allow_pickle=False)


def is_mapped(array: np.ndarray) -> bool:
    """Whether `array`'s memory is a file mapping (`load_npy` of a large file), not a private copy."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap):
            return True
        array = array.base
    return isinstance(array, mmap.mmap)


def load_arrays(
    directory: str | Path, names: Iterable[str], *, mmap_min_bytes: int = MMAP_MIN_BYTES
) -> dict[str, np.ndarray]:
    """Load `<name>.npy` files with `allow_pickle=False` (large ones memory-mapped, see `load_npy`); a missing
    file raises FileNotFoundError naming it."""
    out = {}
    for name in names:
        path = Path(directory) / f"{name}.npy"
        if not path.exists():
            raise FileNotFoundError(f"model folder {directory} lacks {path.name}")
        out[name] = load_npy(path, mmap_min_bytes=mmap_min_bytes)
    return out


def check_out_writable(out: str | Path, *, option: str = "--out", folder: bool = False) -> None:
    """Refuse an output path that could not be written, before any work is done.

    Args:
        option: how the path was given, for the message ("--out").
        folder: the output is a folder (a model folder); otherwise a file, which must not be an existing folder.

    Raises:
        ConfigError: the path is a folder where a file is expected (or a file where a folder is), or its nearest
            existing parent is not a writable folder.
    """
    out = Path(out)
    if not folder and out.is_dir():
        raise ConfigError(f"{option} {out} is a folder; give a file name")
    if folder and out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out} is a file; give a folder")
    parent = out if folder and out.is_dir() else out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {out}: cannot write into {parent}")


def check_free_space(out: str | Path, need_bytes: int, *, option: str = "--out") -> None:
    """Refuse an output whose disk has less free space than `need_bytes` (an estimate), before the work."""
    parent = Path(out)
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < need_bytes:
        raise ConfigError(
            f"{option} {out}: only {free / 2**20:,.0f} MiB free on its disk, about {need_bytes / 2**20:,.0f} MiB "
            "needed; free some space or write elsewhere"
        )
