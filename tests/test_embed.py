"""`zsrec embed` and zsrec.embed: parquet schema and metadata, the cache switch, early errors; --precision elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from shop_fixtures import tiny_shop, write_tiny_shop
from typer.testing import CliRunner, Result

from zsrec.cli import _check_serving_precision, app
from zsrec.embed import EmbedSettings, embed_dataset, read_vectors
from zsrec.encoders import HashingEncoder
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(cache))
    return cache


def zsrec(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_embed_writes_item_ids_unit_vectors_and_metadata(tmp_path: Path) -> None:
    data = tiny_shop()
    out = tmp_path / "vectors.parquet"
    result = embed_dataset(data, out, EmbedSettings(encoder="hashing-32"))
    schema = pq.read_schema(out)
    assert str(schema.field("item_id").type) == "string"
    assert str(schema.field("vector").type) == "fixed_size_list<element: float>[32]"
    frame, meta = read_vectors(out)
    assert frame["item_id"].tolist() == data.items["item_id"].astype(str).tolist()
    vectors = np.stack(frame["vector"].to_numpy())
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    expected = HashingEncoder(32).encode(ItemTextTemplate().render(data.items))
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert meta["encoder_id"] == "hashing-32" == result.encoder_id
    assert meta["encoder"] == "hashing-32" and meta["precision"] == "fp32" and meta["dim"] == "32"
    assert json.loads(meta["template"])["id"] == ItemTextTemplate().id


def test_no_cache_neither_reads_nor_writes_the_cache(tmp_path: Path, _cache_in_tmp: Path) -> None:
    data = tiny_shop()
    embed_dataset(data, tmp_path / "a.parquet", EmbedSettings(encoder="hashing-32", use_cache=False))
    assert cache_files(_cache_in_tmp) == []
    embed_dataset(data, tmp_path / "b.parquet", EmbedSettings(encoder="hashing-32"))
    assert any(p.name.startswith("shard-") for p in cache_files(_cache_in_tmp))
    # a poisoned cache entry would show in the output if the cache were read
    for shard in _cache_in_tmp.rglob("shard-*.npy"):
        records = np.load(shard, allow_pickle=False)
        records["vector"] = 0.0
        np.save(shard, records, allow_pickle=False)
    embed_dataset(data, tmp_path / "c.parquet", EmbedSettings(encoder="hashing-32", use_cache=False))
    fresh = np.stack(read_vectors(tmp_path / "c.parquet")[0]["vector"].to_numpy())
    assert np.abs(np.linalg.norm(fresh, axis=1) - 1).max() < 1e-6


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="precision must be one of"):
        EmbedSettings(precision="int4")
    with pytest.raises(ConfigError, match="engine must be one of"):
        EmbedSettings(engine="ray")
    assert EmbedSettings(encoder="mpnet", precision="int8").spec == "mpnet@int8"


def test_cli_embed_and_its_errors(tmp_path: Path, _cache_in_tmp: Path) -> None:
    shop = write_tiny_shop(tmp_path)
    out = tmp_path / "out" / "vectors.parquet"
    done = zsrec("embed", str(shop), "--encoder", "hashing-16", "--no-cache", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "embedded 14 items with hashing-16" in done.stdout and out.exists()
    assert cache_files(_cache_in_tmp) == []
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    for options, expected in [
        (["--out", str(tmp_path)], "is a folder"),
        (["--out", str(tmp_path / "v.parquet"), "--engine", "flink"], "engine must be one of"),
        (["--out", str(tmp_path / "v.parquet"), "--precision", "int8"], "has no int8"),
        (["--out", str(tmp_path / "v.parquet"), "--precision", "bf16"], "precision must be one of"),
    ]:
        failed = zsrec("embed", str(shop), "--encoder", "hashing-16", *options)
        assert failed.exit_code == 2 and expected in failed.stderr, failed.output
    assert not (tmp_path / "v.parquet").exists()


def test_precision_option_reaches_the_encoder(tmp_path: Path) -> None:
    shop = write_tiny_shop(tmp_path)
    failed = zsrec("evaluate", str(shop), "--encoder", "hashing", "--precision", "int8", "--models", "zero-shot-mean")
    assert failed.exit_code == 2 and "has no int8" in failed.stderr, failed.output
    failed = zsrec("evaluate", str(shop), "--precision", "fp16")
    assert failed.exit_code == 2 and "--precision must be one of fp32, int8" in failed.stderr


def test_serve_refuses_a_precision_other_than_the_folders() -> None:
    _check_serving_precision("minilm@int8", "int8")
    _check_serving_precision("minilm", "fp32")
    with pytest.raises(ConfigError, match="made at precision int8"):
        _check_serving_precision("minilm@int8", "fp32")
    with pytest.raises(ConfigError, match="made at precision fp32"):
        _check_serving_precision("minilm", "int8")
