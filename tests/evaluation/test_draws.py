"""Many-draw evaluation and the warm-up protocol: summary statistics, the strongest-baseline ratio, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_fixtures import tiny_shop, write_tiny_shop
from typer.testing import CliRunner

from zsrec.cli import app
from zsrec.data.dataset import Dataset
from zsrec.data.splits import SplitSettings
from zsrec.errors import ConfigError
from zsrec.evaluation.draws import (
    baseline_ratios,
    check_draws,
    quantile_summary,
    run_draws,
    strongest_baseline,
    summarize_draws,
)
from zsrec.evaluation.evaluate import EvalSettings
from zsrec.evaluation.run import run_evaluation
from zsrec.evaluation.warmup import parse_reveal, run_warmup

FAST_MODELS = ["random", "popularity", "tfidf"]
TINY_SPLIT = SplitSettings(level=2, min_history=2)
NO_CI = EvalSettings(n_bootstrap=0)


def doc(**ndcg: float | None) -> dict:
    """A result document with only what the summaries read: new-pool NDCG@10 per model."""
    return {"results": {m: {"new": {"ndcg@10": v, "n_users": 10, "ndcg@10_ci": [0, 1]}} for m, v in ndcg.items()}}


# -- summary statistics -----------------------------------------------------------------------------------
def test_quantile_summary_on_known_numbers() -> None:
    assert quantile_summary([5.0, 1.0, 3.0, 2.0, 4.0]) == {"median": 3.0, "q1": 2.0, "q3": 4.0, "min": 1.0, "max": 5.0}
    even = quantile_summary([1.0, 2.0, 3.0, 4.0])
    assert even == {"median": 2.5, "q1": 1.75, "q3": 3.25, "min": 1.0, "max": 4.0}
    assert quantile_summary([2.0, None, float("nan")]) == dict.fromkeys(("median", "q1", "q3", "min", "max"), 2.0)
    assert quantile_summary([None]) == dict.fromkeys(("median", "q1", "q3", "min", "max"))


def test_summarize_draws_keeps_scalar_metrics_per_model_and_pool() -> None:
    summary = summarize_draws([doc(a=0.1, b=0.4), doc(a=0.3, b=None), doc(a=0.2)])
    assert summary["a"]["new"]["ndcg@10"]["median"] == pytest.approx(0.2)
    assert summary["a"]["new"]["ndcg@10"]["min"] == 0.1 and summary["a"]["new"]["ndcg@10"]["max"] == 0.3
    assert summary["b"]["new"]["ndcg@10"]["median"] == 0.4  # an undefined value is left out
    assert summary["a"]["new"]["n_users"]["median"] == 10
    assert "ndcg@10_ci" not in summary["a"]["new"]


# -- the strongest baseline --------------------------------------------------------------------------------
def test_strongest_baseline_is_the_best_text_baseline_until_purchases_are_revealed() -> None:
    results = doc(tfidf=0.2, bm25=0.3, popularity=0.9, **{"zero-shot": 0.5})["results"]
    assert strongest_baseline(results, revealed=False) == "bm25"
    assert strongest_baseline(results, revealed=True) == "popularity"
    assert strongest_baseline(doc(random=0.1, **{"zero-shot": 0.5})["results"], revealed=True) is None


def test_ratio_to_the_strongest_baseline_of_each_draw() -> None:
    draws = [doc(tfidf=0.2, bm25=0.4, zs=0.6), doc(tfidf=0.5, bm25=0.25, zs=0.5), doc(tfidf=0.0, zs=0.3)]
    ratios = baseline_ratios(draws, revealed=False)
    assert ratios is not None
    assert ratios["strongest"] == ["bm25", "tfidf", "tfidf"]
    assert ratios["per_draw"]["zs"] == [pytest.approx(1.5), pytest.approx(1.0), None]  # a baseline at 0: no ratio
    assert ratios["summary"]["zs"]["median"] == pytest.approx(1.25)
    assert ratios["summary"]["bm25"]["max"] == pytest.approx(1.0)
    assert ratios["baselines"] == ["tfidf", "bm25"] and (ratios["pool"], ratios["metric"]) == ("new", "ndcg@10")
    assert baseline_ratios([doc(random=0.1, zs=0.2)], revealed=False) is None


# -- options ----------------------------------------------------------------------------------------------
def test_parse_reveal_keeps_values_as_written_in_ascending_order() -> None:
    assert parse_reveal("0,0.01,0.1") == ("0", "0.01", "0.1")
    assert parse_reveal(" 0.10 , 0") == ("0", "0.10")
    for bad in ("0.1,,0.2", "", "0.1,", "1", "-0.1", "x", "nan", "0.1,0.10"):
        with pytest.raises(ConfigError):
            parse_reveal(bad)


def test_draws_need_a_seeded_category_draw() -> None:
    check_draws(100, SplitSettings())
    for draws in (0, 101):
        with pytest.raises(ConfigError, match="between 1 and 100"):
            check_draws(draws, SplitSettings())
    with pytest.raises(ConfigError, match="named categories"):
        check_draws(2, SplitSettings(categories=("Tents",)))
    with pytest.raises(ConfigError, match="leave-category-out"):
        check_draws(2, SplitSettings(protocol="leave-one-out"))


# -- end to end --------------------------------------------------------------------------------------------
def test_draw_i_is_the_evaluation_with_seed_plus_i() -> None:
    data = tiny_shop()
    result = run_draws(data, FAST_MODELS, TINY_SPLIT, NO_CI, draws=3)
    assert result["protocol"]["seeds"] == [0, 1, 2] and len(result["draws"]) == 3
    for i, draw in enumerate(result["draws"]):
        alone = run_evaluation(
            data, FAST_MODELS, SplitSettings(level=2, min_history=2, seed=i), EvalSettings(n_bootstrap=0, seed=i)
        )
        assert draw["results"] == alone["results"]
    values = [d["results"]["tfidf"]["new"]["ndcg@10"] for d in result["draws"]]
    assert result["summary"]["tfidf"]["new"]["ndcg@10"]["median"] == pytest.approx(float(np.median(values)))
    assert result["ratio_to_strongest_baseline"]["strongest"] == ["tfidf"] * 3  # popularity counts only revealed


def test_one_reveal_share_keeps_the_schema_and_share_zero_is_the_plain_evaluation() -> None:
    data = tiny_shop()
    plain = run_evaluation(data, FAST_MODELS, TINY_SPLIT, NO_CI)
    zero = run_warmup(data, FAST_MODELS, TINY_SPLIT, NO_CI, reveal=["0"])
    assert zero["results"] == plain["results"]
    assert zero["protocol"]["reveal"] == {"value": "0", "share": 0.0, "n_revealed_users": 0, "n_revealed_events": 0}
    half = run_warmup(data, FAST_MODELS, TINY_SPLIT, NO_CI, reveal=["0.5"])
    n_test = plain["protocol"]["n_test_users"]
    assert half["protocol"]["reveal"]["n_revealed_users"] == -(-n_test // 2)
    assert half["protocol"]["n_test_users"] == n_test - half["protocol"]["reveal"]["n_revealed_users"]


def test_cli_draws_and_reveal_write_the_documented_json(tmp_path: Path) -> None:
    shop = write_tiny_shop(tmp_path)
    out = tmp_path / "draws.json"
    args = ["evaluate", str(shop), "--level", "2", "--min-history", "2", "--models", ",".join(FAST_MODELS)]
    result = CliRunner().invoke(
        app, [*args, "--draws", "2", "--reveal", "0,0.5", "--bootstrap", "0", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "warm-up" in result.stdout and "per draw" in result.stdout and "strongest baseline" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["n_draws"] == 2 and doc["reveal_values"] == ["0", "0.5"] and doc["protocol"]["seeds"] == [0, 1]
    for draw in doc["draws"]:
        assert list(draw["reveal"]) == ["0", "0.5"]
        zero, half = draw["reveal"]["0"], draw["reveal"]["0.5"]
        assert set(zero["results"]) == set(FAST_MODELS)
        assert half["protocol"]["reveal"]["n_revealed_users"] > 0
        assert half["protocol"]["n_test_users"] < zero["protocol"]["n_test_users"]
    stats = doc["summary"]["0.5"]["tfidf"]["new"]["ndcg@10"]
    assert set(stats) == {"median", "q1", "q3", "min", "max"} and stats["min"] <= stats["median"] <= stats["max"]
    assert doc["ratio_to_strongest_baseline"]["0"]["baselines"] == ["tfidf"]
    assert doc["ratio_to_strongest_baseline"]["0.5"]["baselines"] == ["popularity", "tfidf"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--draws", "0"], "between 1 and 100"),
        (["--draws", "2", "--categories", "Tents"], "named categories"),
        (["--reveal", "0.1,,0.2"], "no empty element"),
        (["--reveal", "1"], "[0, 1)"),
        (["--protocol", "leave-one-out", "--reveal", "0.1"], "leave-category-out"),
    ],
)
def test_cli_refuses_bad_draws_and_reveal_in_one_line(tmp_path: Path, options: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(write_tiny_shop(tmp_path)), "--models", "random", *options])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def one_hit_shop() -> Dataset:
    """60 users with three warm purchases; in the new category everybody buys n0 and one other: once purchases
    are revealed, popularity knows n0 is the hit, which random cannot."""
    rng = np.random.default_rng(0)
    titles = [f"warm thing {j}" for j in range(6)] + [f"new thing {j}" for j in range(8)]
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(14)], "title": titles})
    items["category"] = ["Warm"] * 6 + ["New"] * 8
    items["description"], items["brand"] = "", ""
    rows = []
    for u in range(60):
        rows += [(u, int(j), float(j)) for j in rng.choice(6, size=3, replace=False)]
        rows += [(u, 6, 100.0 + u), (u, 7 + int(rng.integers(7)), 101.0 + u)]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).sort_values(["user", "timestamp"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(60)], "profile": ""})
    return Dataset("one-hit", items, users, inter.reset_index(drop=True))


def test_popularity_beats_random_once_purchases_are_revealed() -> None:
    split = SplitSettings(level=1, categories=("New",), validation_fraction=0.0)
    result = run_warmup(one_hit_shop(), ["random", "popularity"], split, NO_CI, reveal=["0", "0.5"])
    cold, warm = result["reveal"]["0"]["results"], result["reveal"]["0.5"]["results"]
    assert warm["popularity"]["new"]["ndcg@10"] > warm["random"]["new"]["ndcg@10"] + 0.1
    assert cold["popularity"]["new"]["ndcg@10"] < warm["popularity"]["new"]["ndcg@10"]
