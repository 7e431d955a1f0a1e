"""The front door: `import zsrec` stays cheap, the README's Python example runs, and the API works on DataFrames."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import REPO
from test_run import HELD_OUT, shop_tables

import zsrec
from zsrec.errors import ConfigError, DataValidationError, ZsrecError


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


def readme_python_block() -> str:
    """The code block of README.md's "## Python" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "README.md's Python section has no ```python block"
    return match.group(1)


def test_import_zsrec_is_cheap_and_lists_its_api() -> None:
    code = "import sys, zsrec; print(sorted(m for m in ('torch', 'pandas', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
    assert set(zsrec.__all__) == {
        "Dataset", "Recommender", "__version__", "build_model", "evaluate", "from_frames", "load_dataset", "load_model"
    }  # fmt: skip
    for name in zsrec.__all__:
        assert getattr(zsrec, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        zsrec.nope  # noqa: B018


def test_the_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_python_block(), "README.md", "exec"), {"__name__": "readme"})
    lines = printed.getvalue().splitlines()
    assert lines[0].split() == ["user_id", "item_id", "score", "rank"]
    assert all(line.split()[1] == "outdoor-0" for line in lines[1:4])
    scores = eval(lines[-1])  # {name: ndcg@10}
    assert scores["tfidf"] > scores["random"]


# -- from_frames ------------------------------------------------------------------------------------------
def renamed_shop() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    items, interactions, users = shop_tables()
    items = items.rename(columns={"item_id": "sku", "title": "name"})
    interactions = interactions.rename(columns={"user_id": "customer", "item_id": "sku", "timestamp": "ts"})
    return items, interactions, users.rename(columns={"user_id": "customer"})


COLUMNS = {"item_id": "sku", "title": "name", "user_id": "customer", "timestamp": "ts"}


def run_script(items: object, interactions: object, users: object) -> None:
    """What a user writes: only zsrec's front door, on DataFrames with their own column names."""
    data = zsrec.from_frames(items, interactions, users, columns=COLUMNS, name="my shop")
    assert (data.n_items, data.n_users, len(data.interactions)) == (80, 48, 288)
    model = zsrec.build_model("tfidf").fit(data)
    top = model.recommend_users(["outdoor-0", "kitchen-1"], k=5)
    assert list(top.columns) == ["user_id", "item_id", "score", "rank"]
    assert top.groupby("user_id")["rank"].apply(list).to_dict() == {
        "outdoor-0": [1, 2, 3, 4, 5],
        "kitchen-1": [1, 2, 3, 4, 5],
    }
    seen = set(data.items["item_id"].to_numpy()[data.histories()[data.user_map.index(["outdoor-0"])[0]]])
    assert not seen & set(top.loc[top["user_id"] == "outdoor-0", "item_id"])
    result = zsrec.evaluate(data, ["random", "tfidf"], level=2, categories=HELD_OUT.split(";"), n_bootstrap=20)
    assert result["dataset"] == "my shop"
    assert result["results"]["tfidf"]["new"]["ndcg@10"] > result["results"]["random"]["new"]["ndcg@10"]
    json.dumps(result, allow_nan=False)  # the document is plain JSON


def test_a_script_on_pandas_frames_with_renamed_columns() -> None:
    run_script(*renamed_shop())


def test_a_script_on_polars_frames() -> None:
    polars = pytest.importorskip("polars")
    run_script(*(polars.from_pandas(frame) for frame in renamed_shop()))


def test_frames_and_files_give_the_same_dataset(tmp_path: Path) -> None:
    items, interactions, users = shop_tables()
    items.loc[3, "title"] = ""  # a blemish: cleaned and reported the same way
    folder = tmp_path / "shop"
    folder.mkdir()
    items.to_csv(folder / "items.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    from_files = zsrec.load_dataset(folder)
    from_frames = zsrec.from_frames(items, interactions)
    assert from_frames.warnings == from_files.warnings and from_files.warnings
    pd.testing.assert_frame_equal(from_frames.items, from_files.items)
    pd.testing.assert_frame_equal(from_frames.interactions, from_files.interactions)
    pd.testing.assert_frame_equal(from_frames.users, from_files.users)


def test_from_frames_errors_name_the_column() -> None:
    items, interactions, users = renamed_shop()
    with pytest.raises(ConfigError, match="unknown zsrec column 'customer_id'"):
        zsrec.from_frames(items, interactions, columns={"customer_id": "customer"})
    with pytest.raises(DataValidationError, match="no column 'client'"):
        zsrec.from_frames(items, interactions, columns={**COLUMNS, "user_id": "client"})
    with pytest.raises(DataValidationError, match="missing required column.*title|title"):
        zsrec.from_frames(items, interactions, columns={"item_id": "sku", "user_id": "customer"})
    with pytest.raises(DataValidationError, match="pandas or polars DataFrame"):
        zsrec.from_frames({"item_id": [1]}, interactions)
    broken = interactions.copy()
    broken.loc[5, "sku"] = "no-such-item"
    with pytest.raises(DataValidationError, match="no-such-item"):
        zsrec.from_frames(items, broken, columns=COLUMNS)


# -- build_model and recommend_users ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def shop() -> zsrec.Dataset:
    items, interactions, users = shop_tables()
    return zsrec.from_frames(items, interactions, users)


def test_build_model_takes_the_settings_fields(shop: zsrec.Dataset) -> None:
    model = zsrec.build_model("tfidf", min_df=2)
    assert model.settings.min_df == 2
    with pytest.raises(ConfigError, match="no setting 'min_dff'.*min_df"):
        zsrec.build_model("tfidf", min_dff=2)
    with pytest.raises(ConfigError, match="unknown model 'tfdif'"):
        zsrec.build_model("tfdif")


def test_recommend_users_filters(shop: zsrec.Dataset) -> None:
    train = shop.with_interactions(shop.interactions[shop.interactions["item"] >= 10])  # no tent touched
    model = zsrec.build_model("tfidf").fit(train)
    new = model.recommend_users(["outdoor-0"], k=50, new_only=True)
    untouched = set(shop.items["item_id"]) - set(shop.items["item_id"].to_numpy()[train.interactions["item"]])
    assert {f"ten{j}" for j in range(10)} <= untouched
    assert len(new) == len(untouched) and set(new["item_id"]) == untouched
    assert new["rank"].tolist() == list(range(1, len(untouched) + 1))
    assert new["score"].is_monotonic_decreasing
    bags = model.recommend_users(["outdoor-0"], k=3, categories=["Outdoor > Sleeping Bags"])
    by_name = model.recommend_users(["outdoor-0"], k=3, categories=["sleeping bags"])
    pd.testing.assert_frame_equal(bags, by_name)
    assert set(shop.items.set_index("item_id").loc[bags["item_id"], "category"]) == {"Outdoor > Sleeping Bags"}
    with pytest.raises(ConfigError, match="unknown user id 'nobody'"):
        model.recommend_users(["outdoor-0", "nobody"])
    with pytest.raises(ConfigError, match="category 'Nowhere' matches no item"):
        model.recommend_users(["outdoor-0"], categories=["Nowhere"])


def test_recommend_users_matches_recommend_and_survives_save(shop: zsrec.Dataset, tmp_path: Path) -> None:
    model = zsrec.build_model("tfidf").fit(shop)
    users = shop.user_map.index(["kitchen-2", "garden-3"])
    ranking = model.recommend(users, k=4)
    frame = model.recommend_users(["kitchen-2", "garden-3"], k=4)
    assert frame["item_id"].tolist() == shop.item_map.ids(ranking.items.ravel()).tolist()
    np.testing.assert_allclose(frame["score"], ranking.scores.ravel(), rtol=1e-6)
    model.save(tmp_path / "m")
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "m").iterdir())
    pd.testing.assert_frame_equal(
        zsrec.load_model(tmp_path / "m").recommend_users(["kitchen-2", "garden-3"], k=4), frame
    )


def test_an_old_folder_without_ids_loads_but_cannot_recommend_by_id(shop: zsrec.Dataset, tmp_path: Path) -> None:
    model = zsrec.build_model("popularity").fit(shop)
    model.save(tmp_path / "old")
    (tmp_path / "old" / "manifest.json").unlink()  # old folders predate manifests too
    (tmp_path / "old" / "ids.json").unlink()
    loaded = zsrec.load_model(tmp_path / "old")
    assert loaded.recommend(np.array([0]), k=3).items.shape == (1, 3)
    with pytest.raises(ConfigError, match="without its item and user ids"):
        loaded.recommend_users(["outdoor-0"])


def test_evaluate_takes_model_objects_and_checks_options(shop: zsrec.Dataset) -> None:
    result = zsrec.evaluate(
        shop, [zsrec.build_model("tfidf", min_df=1), "random"], level=2, categories=["Knives"], k=[5], n_bootstrap=0
    )
    assert set(result["results"]) == {"tfidf", "random"}
    assert "ndcg@5" in result["results"]["tfidf"]["new"]
    with pytest.raises(ZsrecError, match="pool"):
        zsrec.evaluate(shop, ["random"], protocol="leave-one-out", pool="new")
    with pytest.raises(ConfigError, match="unknown model"):
        zsrec.evaluate(shop, ["nope"])
