"""The Spark jobs match the local path: same batch rows (top-10 per user), same vectors (cosine >= 0.999).

One local[2] session for the module: a session takes 15-30 s to start.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop, write_tiny_shop
from typer.testing import CliRunner

import zsrec.scale.spark as zspark
from zsrec.batch import BatchSettings, export_recommendations
from zsrec.cli import app
from zsrec.embed import read_vectors
from zsrec.encoders.loading import load_encoder
from zsrec.errors import ConfigError
from zsrec.train import train_model

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (no java on PATH)", allow_module_level=True)


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    with zspark.spark_session("local[2]") as session:
        yield session


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "spark-shop-model"
    train_model(tiny_shop(), "zero-shot-mean", encoder="hashing", out=out)
    return out


def test_spark_scores_every_user_as_the_local_path_does(spark: object, folder: Path, tmp_path: Path) -> None:
    settings = BatchSettings(k=10)
    local = export_recommendations(folder, out=tmp_path / "local.parquet", settings=settings)
    result = zspark.spark_recommend(folder, out=tmp_path / "spark.csv", settings=settings, partitions=3, spark=spark)
    assert (result.users, result.rows) == (local.users, local.rows) and local.rows > 200  # under 10 unseen: fewer
    a = pd.read_parquet(tmp_path / "local.parquet")
    b = pd.read_csv(tmp_path / "spark.csv", dtype={"user_id": str, "item_id": str, "because_item_id": str})
    assert list(b.columns) == list(a.columns)
    pd.testing.assert_frame_equal(a[["user_id", "item_id", "rank"]], b[["user_id", "item_id", "rank"]])
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)
    assert (a["because_item_id"] == b["because_item_id"]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.parquet", "spark.csv"]  # staging removed


def test_spark_embeds_items_as_the_local_encoder_does(spark: object) -> None:
    items = tiny_shop().items.assign(text=lambda f: f["title"] + " " + f["category"])
    out = zspark.spark_embed(items, "hashing-64", partitions=3, spark=spark)
    assert out["item_id"].tolist() == items["item_id"].tolist()
    vectors = np.stack(out["vector"].to_numpy())
    assert vectors.dtype == np.float32 and vectors.shape == (len(items), 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    local = load_encoder("hashing-64").encode(items["text"].tolist())
    local = local / np.linalg.norm(local, axis=1, keepdims=True)
    assert (np.sum(vectors * local, axis=1) >= 0.999).all()


def test_the_cli_runs_the_batch_export_on_spark(
    spark: object, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = zspark.spark_recommend
    masters = []

    def in_the_shared_session(*args: object, **kwargs: object) -> object:
        masters.append(kwargs.pop("master"))
        return original(*args, **kwargs, spark=spark)

    monkeypatch.setattr(zspark, "spark_recommend", in_the_shared_session)
    out = tmp_path / "recs.jsonl"
    command = ["recommend", str(folder), "--users", "all", "--k", "3", "--out", str(out)]
    done = CliRunner().invoke(app, [*command, "--engine", "spark", "--spark-master", "local[2]"])
    assert done.exit_code == 0, done.output
    assert masters == ["local[2]"] and len(pd.read_json(out, lines=True)) == 120


def test_the_embed_command_on_spark_matches_the_local_engine(
    spark: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = zspark.spark_embed

    def in_the_shared_session(*args: object, **kwargs: object) -> object:
        kwargs.pop("master")
        return original(*args, **kwargs, spark=spark)

    monkeypatch.setattr(zspark, "spark_embed", in_the_shared_session)
    shop = write_tiny_shop(tmp_path)
    outs = {}
    for engine in ("local", "spark"):
        outs[engine] = tmp_path / f"{engine}.parquet"
        command = ["embed", str(shop), "--encoder", "hashing-32", "--no-cache", "--out", str(outs[engine])]
        done = CliRunner().invoke(app, [*command, "--engine", engine])
        assert done.exit_code == 0, done.output
    local, local_meta = read_vectors(outs["local"])
    remote, remote_meta = read_vectors(outs["spark"])
    assert remote["item_id"].tolist() == local["item_id"].tolist() and remote_meta == local_meta
    a, b = np.stack(local["vector"].to_list()), np.stack(remote["vector"].to_list())
    assert a.shape == (14, 32) and (np.sum(a * b, axis=1) >= 0.999).all()


def test_spark_settings_are_checked_before_a_session_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="precision must be one of"):
        zspark.spark_embed(pd.DataFrame({"item_id": ["a"], "text": ["t"]}), "hashing", precision="bf16")
    with pytest.raises(ConfigError, match="missing text"):
        zspark.spark_embed(pd.DataFrame({"item_id": ["a"]}), "hashing")
    monkeypatch.setenv("SPARK_MASTER", "spark://head:7077")
    assert zspark.spark_master(None) == "spark://head:7077" and zspark.spark_master("local[2]") == "local[2]"
    monkeypatch.delenv("SPARK_MASTER")
    assert zspark.spark_master(None) == "local[*]"
