"""Batch export: every user's top k from a model folder, streamed in chunks into parquet/csv/jsonl, atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop, write_tiny_shop
from typer.testing import CliRunner

import zsrec.batch as batch
from zsrec.batch import BATCH_COLUMNS, BYTES_PER_PAIR, BatchSettings, export_recommendations, read_rows, user_ranking
from zsrec.cli import app
from zsrec.errors import ConfigError
from zsrec.models.registry import load_model
from zsrec.service.schemas import RecommendResponse
from zsrec.train import train_model

K = 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "shop-model"
    train_model(tiny_shop(), "zero-shot-mean", encoder="hashing", out=out)
    return out


def _expected(folder: Path, users: list[str], k: int = K, **options: object) -> pd.DataFrame:
    return load_model(folder).recommend_users(users, k, **options)


def test_every_user_is_exported_with_the_ranking_of_recommend_users(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "recs.parquet"
    result = export_recommendations(folder, out=out, settings=BatchSettings(k=K))
    rows = pd.read_parquet(out)
    assert tuple(rows.columns) == BATCH_COLUMNS
    assert result.users == 40 and result.rows == len(rows) == 40 * K
    model = load_model(folder)
    expected = _expected(folder, [str(u) for u in model.ids_.users])
    pd.testing.assert_frame_equal(rows[list(expected.columns)], expected, check_dtype=False)
    # the explaining item is one the user bought
    position = {u: n for n, u in enumerate(model.ids_.users)}
    for user_id, because in zip(rows["user_id"], rows["because_item_id"], strict=True):
        assert because in set(model.ids_.items[model.histories_[position[user_id]]])


def test_small_chunks_give_the_same_rows_as_one_chunk(folder: Path, tmp_path: Path) -> None:
    one, many = tmp_path / "one.parquet", tmp_path / "many.parquet"
    export_recommendations(folder, out=one, settings=BatchSettings(k=K))
    assert BatchSettings(memory_mb=1, max_chunk_users=7).chunk_users(12) == 7
    chunks = []
    original = batch.recommend_chunk

    def counting(*args: object, **kwargs: object) -> pd.DataFrame:
        chunks.append(1)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "recommend_chunk", counting)
        export_recommendations(folder, out=many, settings=BatchSettings(k=K, max_chunk_users=7))
    assert len(chunks) == 6  # 40 users, 7 a chunk
    pd.testing.assert_frame_equal(pd.read_parquet(one), pd.read_parquet(many))


def test_the_chunk_size_follows_the_memory_budget() -> None:
    settings = BatchSettings(memory_mb=256)
    assert settings.chunk_users(1_000_000) == (256 << 20) // (BYTES_PER_PAIR * 1_000_000) == 8  # of a million items
    assert settings.chunk_users(10) == settings.max_chunk_users
    assert BatchSettings(memory_mb=1).chunk_users(10**9) == 1


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_csv_and_jsonl_hold_the_same_rows_as_parquet(folder: Path, tmp_path: Path, suffix: str) -> None:
    export_recommendations(folder, out=tmp_path / "recs.parquet", settings=BatchSettings(k=K))
    export_recommendations(folder, out=tmp_path / f"recs{suffix}", settings=BatchSettings(k=K))
    pd.testing.assert_frame_equal(
        read_rows(tmp_path / f"recs{suffix}"), pd.read_parquet(tmp_path / "recs.parquet"), check_dtype=False
    )


def test_a_failure_mid_export_leaves_no_file(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "recs.parquet"
    original, calls = batch.recommend_chunk, []

    def fail_on_second(*args: object, **kwargs: object) -> pd.DataFrame:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(batch, "recommend_chunk", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        export_recommendations(folder, out=out, settings=BatchSettings(k=K, max_chunk_users=10))
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_are_refused_before_any_work(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give a file ending in"):
        export_recommendations(folder, out=tmp_path / "recs.xlsx")
    with pytest.raises(ConfigError, match="is a folder"):
        export_recommendations(folder, out=tmp_path)
    with pytest.raises(ConfigError, match="unknown user id 'nobody'"):
        export_recommendations(folder, out=tmp_path / "r.csv", users=["u1", "nobody"])
    with pytest.raises(ConfigError, match="matches no item"):
        export_recommendations(folder, out=tmp_path / "r.csv", settings=BatchSettings(categories=("Garden",)))
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_users_new_only_and_categories(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "users.txt").write_text("u3\nu8\n\n")
    pd.DataFrame({"user_id": ["u8", "u3"]}).to_csv(tmp_path / "users.csv", index=False)
    settings = BatchSettings(k=K, categories=("Kitchen",))
    export_recommendations(folder, out=tmp_path / "a.parquet", users=tmp_path / "users.txt", settings=settings)
    export_recommendations(folder, out=tmp_path / "b.parquet", users=tmp_path / "users.csv", settings=settings)
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    assert a["user_id"].unique().tolist() == ["u3", "u8"] and b["user_id"].unique().tolist() == ["u8", "u3"]
    expected = _expected(folder, ["u3", "u8"], categories=["Kitchen"])
    pd.testing.assert_frame_equal(a[list(expected.columns)], expected, check_dtype=False)
    new = export_recommendations(
        folder, out=tmp_path / "n.parquet", users=["u3"], settings=BatchSettings(k=K, new_only=True)
    )
    assert new.rows == 0  # every item of the tiny shop was bought by someone


def test_one_users_ranking_has_the_services_fields_and_the_models_order(folder: Path) -> None:
    answer = user_ranking(folder, "u4", k=5)
    RecommendResponse.model_validate(answer)  # the fields of the service's /recommend answer
    expected = _expected(folder, ["u4"], k=5)
    assert [i["item_id"] for i in answer["items"]] == expected["item_id"].tolist()
    np.testing.assert_allclose([i["score"] for i in answer["items"]], expected["score"])
    shop = tiny_shop().items.set_index("item_id")
    first = answer["items"][0]
    assert first["title"] == shop.loc[first["item_id"], "title"]
    assert first["because"] and first["because"][0]["title"] == shop.loc[first["because"][0]["item_id"], "title"]


def test_the_cli_exports_every_user_and_prints_one_users_ranking(folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "recs.jsonl"
    done = runner.invoke(app, ["recommend", str(folder), "--users", "all", "--k", str(K), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert len(read_rows(out)) == 40 * K
    done = runner.invoke(app, ["recommend", str(folder), "--user", "u4", "--k", "5", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == json.loads(json.dumps(user_ranking(folder, "u4", k=5)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--users", "all"], "--users needs --out"),
        (["--users", "all", "--out", "recs.txt"], "give a file ending in"),
        (["--user", "u1", "--users", "all"], "exactly one of --user"),
        (["--users", "all", "--out", "r.csv", "--engine", "flink"], "--engine must be local or spark"),
        (["--user", "nobody"], "unknown user id"),
    ],
)
def test_the_cli_refuses_bad_batch_requests(folder: Path, tmp_path: Path, options: list[str], message: str) -> None:
    options = [str(tmp_path / o) if o.startswith(("recs.", "r.")) else o for o in options]
    done = CliRunner().invoke(app, ["recommend", str(folder), *options])
    assert done.exit_code == 2 and message in done.output, done.output
    assert list(tmp_path.iterdir()) == []


def test_batch_options_on_a_dataset_say_they_need_a_model_folder(tmp_path: Path) -> None:
    write_tiny_shop(tmp_path)
    done = CliRunner().invoke(app, ["recommend", str(tmp_path), "--users", "all", "--out", str(tmp_path / "r.csv")])
    assert done.exit_code == 2 and "need a model folder" in done.output
