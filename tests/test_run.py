"""`run_evaluation` on a tiny shop with a known answer: tent buyers get the new sleeping bags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import DEPARTMENTS, write_department_shop

from zsrec.data import load_dataset
from zsrec.data.splits import SplitSettings
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings
from zsrec.evaluation.report import metrics_table, per_category_table, result_tables
from zsrec.evaluation.run import (
    check_request,
    parse_ks,
    prepare_split,
    resolve_pools,
    run_evaluation,
)
from zsrec.models.registry import ModelContext, build_model

# Four themes; the second category of each is held out ("new"). Item texts share their theme's words, so a
# content model can tell which new items suit which user; interactions alone cannot.
THEMES = {
    "Outdoor": (
        ("Tents", "tent", "camping shelter for hiking trips in the mountains"),
        ("Sleeping Bags", "sleeping bag", "warm camping bag for hiking trips in the mountains"),
    ),
    "Kitchen": (
        ("Pans", "frying pan", "cookware for the kitchen stove and cooking dinner"),
        ("Knives", "chef knife", "sharp cutlery for the kitchen and cooking dinner"),
    ),
    "Garden": (
        ("Hoses", "garden hose", "watering the lawn and flower beds outdoors in the yard"),
        ("Seeds", "flower seeds", "sow in flower beds and the lawn of the yard"),
    ),
    "Office": (
        ("Pens", "ballpoint pen", "writing at the office desk with stationery"),
        ("Paper", "printer paper", "stationery for the office desk printer"),
    ),
}
HELD_OUT = "Sleeping Bags;Knives;Seeds;Paper"
ADJECTIVES = ("Blue", "Light", "Pro", "Classic", "Compact", "Deluxe", "Basic", "Premium", "Eco", "Ultra")
ITEMS_PER_CATEGORY = 10
USERS_PER_THEME = 12


def shop_tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Items, interactions and users of the themed shop (deterministic)."""
    rng = np.random.default_rng(seed)
    items, by_category = [], {}
    for theme, categories in THEMES.items():
        for name, noun, description in categories:
            path = f"{theme} > {name}"
            ids = []
            for j in range(ITEMS_PER_CATEGORY):
                item_id = f"{name[:3].lower()}{j}"
                items.append(
                    {
                        "item_id": item_id,
                        "title": f"{ADJECTIVES[j]} {noun}",
                        "category": path,
                        "description": description,
                        "brand": f"{theme}Co",
                    }
                )
                ids.append(item_id)
            by_category[path] = ids
    interactions, users = [], []
    for theme, ((old, _, _), (new, _, _)) in THEMES.items():
        for n in range(USERS_PER_THEME):
            user = f"{theme.lower()}-{n}"
            history = rng.choice(by_category[f"{theme} > {old}"], size=4, replace=False).tolist()
            targets = rng.choice(by_category[f"{theme} > {new}"], size=2, replace=False).tolist()
            for t, item in enumerate(history + targets):
                interactions.append({"user_id": user, "item_id": item, "timestamp": 1_000 + 10 * t + n})
            users.append({"user_id": user, "profile": f"likes {theme.lower()} things"})
    return pd.DataFrame(items), pd.DataFrame(interactions), pd.DataFrame(users)


def write_shop(folder: Path, *, with_users: bool = False) -> Path:
    """The themed shop as items.csv and interactions.csv (and users.csv) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    items, interactions, users = shop_tables()
    items.to_csv(folder / "items.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    if with_users:
        users.to_csv(folder / "users.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shop(tmp_path_factory.mktemp("shop"))


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


SPLIT = SplitSettings(level=2, categories=tuple(HELD_OUT.split(";")), min_history=3)


def test_tfidf_finds_the_new_items_of_the_users_theme(shop_dir: Path) -> None:
    result = run_evaluation(
        str(shop_dir),
        ["random", "tfidf", "zero-shot-mean"],
        SPLIT,
        EvalSettings(pools=("new", "all"), n_bootstrap=50),
        encoder="hashing",
    )
    new = {m: result["results"][m]["new"] for m in result["results"]}
    assert new["tfidf"]["ndcg@10"] >= 3 * new["random"]["ndcg@10"]
    assert new["zero-shot-mean"]["ndcg@10"] >= 3 * new["random"]["ndcg@10"]
    # the new pool holds exactly the held-out items; every user of the shop is a test user
    assert new["tfidf"]["n_candidates"] == 4 * ITEMS_PER_CATEGORY
    assert new["tfidf"]["n_users"] == 4 * USERS_PER_THEME
    assert result["results"]["tfidf"]["all"]["n_candidates"] == 8 * ITEMS_PER_CATEGORY


def test_result_document_shape(shop_dir: Path) -> None:
    result = run_evaluation(
        str(shop_dir),
        ["random", "popularity-oracle"],
        SPLIT,
        EvalSettings(ks=(5, 10), n_bootstrap=20, seed=3),
        command=["zsrec", "evaluate"],
    )
    assert set(result) == {
        "dataset",
        "dataset_fingerprint",
        "protocol",
        "results",
        "models",
        "encoder",
        "item_text_template",
        "zsrec_version",
        "created",
        "command",
    }
    assert result["dataset_fingerprint"]["n_items"] == 80 and len(result["dataset_fingerprint"]["items_sha256"]) == 64
    protocol = result["protocol"]
    assert protocol["name"] == "leave-category-out" and protocol["level"] == 2
    assert sorted(protocol["heldout_categories"]) == sorted(f"{t} > {c[1][0]}" for t, c in THEMES.items())
    assert not set(protocol["validation_categories"]) & set(protocol["heldout_categories"])
    assert protocol["n_new_items"] == 40 and protocol["n_test_users"] == 48
    assert protocol["min_history"] == 3 and protocol["seed"] == 0
    metrics = result["results"]["random"]["new"]
    for key in ("ndcg@5", "ndcg@10", "recall@10", "hr@10", "mrr", "auc", "coverage@5", "n_users"):
        assert key in metrics
    lo, hi = metrics["ndcg@5_ci"]
    assert lo <= metrics["ndcg@5"] <= hi
    assert set(metrics["per_category"]) == set(protocol["heldout_categories"])
    assert result["models"]["random"]["config"]["model"] == "random"
    assert result["models"]["popularity-oracle"]["fit_seconds"] >= 0
    assert result["command"] == ["zsrec", "evaluate"]
    json.dumps(result, allow_nan=False)  # strict JSON: no nan, no numpy scalars


def test_oracle_is_a_ceiling_and_flagged_as_leak(shop_dir: Path) -> None:
    result = run_evaluation(str(shop_dir), ["random", "popularity-oracle"], SPLIT, EvalSettings(n_bootstrap=0))
    new = result["results"]
    assert new["popularity-oracle"]["new"]["ndcg@10"] > new["random"]["new"]["ndcg@10"]
    table = metrics_table(result, "new")
    names = table.columns[0]._cells
    assert "popularity-oracle (leak)" in names and "random" in names
    assert "95% CI" not in [c.header for c in table.columns]  # no bootstrap, no CI column


def test_tables_have_one_row_per_model_and_a_ci_column(shop_dir: Path) -> None:
    result = run_evaluation(
        str(shop_dir),
        ["random", "tfidf"],
        SPLIT,
        EvalSettings(pools=("new", "all"), n_bootstrap=20),
    )
    tables = result_tables(result)
    assert [t.title.split(" ")[0] for t in tables] == ["new", "all"]
    assert all(t.row_count == 2 for t in tables)
    assert "95% CI" in [c.header for c in tables[0].columns]
    per_category = per_category_table(result, "new")
    assert per_category is not None and per_category.row_count == 4


def test_leave_one_out_has_only_the_all_pool(shop_dir: Path) -> None:
    settings = SplitSettings(protocol="leave-one-out", min_history=3)
    pools = resolve_pools(None, "leave-one-out")
    result = run_evaluation(str(shop_dir), ["popularity"], settings, EvalSettings(pools=pools, n_bootstrap=0))
    assert pools == ("all",)
    assert set(result["results"]["popularity"]) == {"all"}
    assert result["protocol"]["n_new_items"] == 0
    assert result["results"]["popularity"]["all"]["per_category"] == {}


@pytest.mark.parametrize(
    ("pool", "protocol", "expected"),
    [
        (None, "leave-category-out", ("new",)),
        ("both", "leave-category-out", ("new", "all")),
        ("all", "leave-one-out", ("all",)),
    ],
)
def test_resolve_pools(pool: str | None, protocol: str, expected: tuple[str, ...]) -> None:
    assert resolve_pools(pool, protocol) == expected


@pytest.mark.parametrize(
    ("pool", "protocol"), [("new", "leave-one-out"), ("both", "leave-one-out"), ("x", "leave-category-out")]
)
def test_resolve_pools_refuses(pool: str, protocol: str) -> None:
    with pytest.raises(ConfigError, match="pool"):
        resolve_pools(pool, protocol)


def test_parse_ks() -> None:
    assert parse_ks("50, 10,10") == (10, 50)
    for bad in ("0", "", "ten", "10,-5", "1.5"):
        with pytest.raises(ConfigError, match="positive integers"):
            parse_ks(bad)


def test_check_request_refuses_before_any_work() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        check_request(["random", "nope"], SplitSettings(), EvalSettings())
    with pytest.raises(ConfigError, match="n_bootstrap"):
        check_request(["random"], SplitSettings(), EvalSettings(n_bootstrap=-1))
    with pytest.raises(ConfigError, match="pool 'new'"):
        check_request(["random"], SplitSettings(protocol="leave-one-out"), EvalSettings(pools=("new",)))
    assert check_request(["tfidf", "random", "tfidf"], SplitSettings(), EvalSettings()) == ["tfidf", "random"]


def test_a_split_without_test_users_is_refused(shop_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no test users"):
        prepare_split(str(shop_dir), SplitSettings(level=2, categories=("Knives",), min_history=50))


def test_run_accepts_a_loaded_dataset(shop_dir: Path) -> None:
    data = load_dataset(shop_dir)
    result = run_evaluation(data, ["popularity"], SPLIT, EvalSettings(n_bootstrap=0))
    assert result["dataset"] == data.name
    # popularity knows nothing of new items: it ties them all, so it ranks like the seeded tie-break
    assert result["results"]["popularity"]["new"]["n_candidates"] == 40


def test_zero_shot_tunes_at_the_level_the_evaluation_holds_out(tmp_path: Path) -> None:
    # Zero-shot's own default validation level on this shop is 1 (four departments), where no fold keeps a user
    # with history elsewhere; inside an evaluation that holds out level-2 categories it validates at level 2.
    folder = write_department_shop(tmp_path / "shop")
    gammas = SplitSettings(level=2, categories=tuple(f"{d} Gamma" for d in DEPARTMENTS))
    result = run_evaluation(str(folder), ["zero-shot"], gammas, EvalSettings(n_bootstrap=0), encoder="hashing")
    tuning = result["models"]["zero-shot"]["config"]["tuning"]
    assert tuning["tuned"] and tuning["validation_level"] == 2
    assert all(" > " in c for fold in tuning["validation_folds"] for c in fold["categories"])
    _, split = prepare_split(str(folder), gammas)
    alone = build_model("zero-shot", ModelContext(encoder="hashing")).fit(split.train)  # its own default level
    assert not alone.tuning_["tuned"] and "at level 1" in alone.tuning_["reason"]
