"""The `zsrec` commands end to end on tiny shops: output, JSON results, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import typer
from test_run import HELD_OUT, ITEMS_PER_CATEGORY, USERS_PER_THEME, write_shop
from typer.testing import CliRunner, Result

from zsrec.cli import app
from zsrec.demo import DEMO_CATEGORIES, DEMO_MODELS

FAST = ["--encoder", "hashing", "--bootstrap", "50"]
LCO = ["--level", "2", "--categories", HELD_OUT]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shop(tmp_path_factory.mktemp("shop"), with_users=True)


def zsrec(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_user_error(result: Result, *, contains: str = "") -> None:
    """Exit code 2, exactly one `error: ...` line on stderr, no traceback."""
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert contains.lower() in lines[0].lower()
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- help -------------------------------------------------------------------------------------------------
def test_every_command_and_option_is_documented() -> None:
    result = zsrec("--help")
    assert result.exit_code == 0
    group = typer.main.get_command(app)  # typer carries its own copy of click: duck typing below
    assert {"validate", "evaluate", "recommend", "demo", "models"} <= set(group.commands)
    for name, command in group.commands.items():
        assert command.help, name
        assert name in result.stdout
        options = [p for p in command.params if p.param_type_name == "option"]
        assert options or name == "models", name
        for param in options:
            assert param.help, f"{name} {param.opts} has no help text"
        page = zsrec(name, "--help")
        assert page.exit_code == 0
        for param in options:
            assert param.opts[0] in page.stdout, (name, param.opts)


# -- evaluate ---------------------------------------------------------------------------------------------
def test_evaluate_finds_new_items_and_writes_the_json(
    shop_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "results.json"
    models = "random,popularity,popularity-oracle,tfidf,zero-shot-mean,zero-shot"
    args = ["evaluate", str(shop_dir), *LCO, *FAST, "--models", models, "--pool", "both", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/zsrec", *args])  # CliRunner leaves pytest's argv in place
    result = zsrec(*args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc) == {
        "dataset",
        "dataset_fingerprint",
        "config",
        "protocol",
        "results",
        "models",
        "encoder",
        "item_text_template",
        "zsrec_version",
        "created",
        "command",
    }
    assert set(doc["protocol"]) == {
        "name",
        "level",
        "heldout_categories",
        "validation_categories",
        "n_test_users",
        "n_new_items",
        "min_history",
        "seed",
    }
    assert doc["protocol"]["n_new_items"] == 4 * ITEMS_PER_CATEGORY
    assert doc["protocol"]["n_test_users"] == 4 * USERS_PER_THEME
    assert list(doc["results"]) == models.split(",")
    assert doc["encoder"] == "hashing" and doc["command"] == ["zsrec", *args]
    assert doc["item_text_template"]["id"].startswith("item-")
    for model, per_pool in doc["results"].items():
        assert set(per_pool) == {"new", "all"}
        metrics = per_pool["new"]
        for key in ("ndcg@10", "recall@10", "hr@10", "mrr", "auc", "coverage@10", "n_users", "n_candidates"):
            assert isinstance(metrics[key], int | float), (model, key)
        assert len(metrics["ndcg@10_ci"]) == 2 and isinstance(metrics["per_category"], dict)
        assert set(doc["models"][model]) == {"config", "fit_seconds", "score_seconds"}
    new = {m: r["new"]["ndcg@10"] for m, r in doc["results"].items()}
    assert new["tfidf"] >= 3 * new["random"]
    assert new["zero-shot-mean"] >= 3 * new["random"]
    # the table: both pools, the leak labelled as such
    assert "new pool: 40 candidates, 48 test users" in result.stdout
    assert "all pool: 80 candidates" in result.stdout
    assert "popularity-oracle (leak)" in result.stdout
    assert "95% CI" in result.stdout


def test_evaluate_default_models_and_leave_one_out(shop_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "loo.json"
    result = zsrec("evaluate", str(shop_dir), "--protocol", "leave-one-out", *FAST, "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert list(doc["results"]) == ["random", "popularity", "tfidf", "zero-shot"]
    assert all(set(r) == {"all"} for r in doc["results"].values())
    assert doc["protocol"]["name"] == "leave-one-out" and doc["protocol"]["n_new_items"] == 0


def test_cleaning_warnings_go_to_stderr(tmp_path: Path) -> None:
    folder = write_shop(tmp_path / "shop")
    items = pd.read_csv(folder / "items.csv")
    items.loc[[0, 5], "title"] = ""  # two empty titles: the description stands in, with a warning
    items.to_csv(folder / "items.csv", index=False)
    result = zsrec("evaluate", str(folder), *LCO, "--models", "random", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert any("2 items had an empty title" in w for w in warnings), result.stderr


# -- validate ---------------------------------------------------------------------------------------------
def test_validate_prints_a_summary(shop_dir: Path) -> None:
    result = zsrec("validate", str(shop_dir))
    assert result.exit_code == 0, result.output
    assert "level 1: 4, level 2: 8" in result.stdout
    assert re.search(r"interactions\s*│\s*288", result.stdout)
    assert result.stderr == ""


def test_validate_json(shop_dir: Path) -> None:
    result = zsrec("validate", str(shop_dir), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_items"] == 80 and summary["n_users"] == 48
    assert summary["categories_per_level"] == {"1": 4, "2": 8}
    assert summary["share_users_multi_category"] == 0.0  # every shopper stays within one theme


def test_a_catalog_with_a_few_empty_titles_validates_with_a_warning(tmp_path: Path) -> None:
    folder = write_shop(tmp_path / "shop")
    items = pd.read_csv(folder / "items.csv")
    items.loc[[3, 4, 7], "title"] = ""
    items.to_csv(folder / "items.csv", index=False)
    result = zsrec("validate", str(folder))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: 3 items had an empty title")
    assert "cleaning warnings" in result.stdout


# -- bad input --------------------------------------------------------------------------------------------
def _edit_csv(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / name
        edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)

    return apply


def _write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def _non_utf8(folder: Path) -> None:
    path = folder / "items.csv"
    path.write_bytes(path.read_bytes().replace(b"Blue tent", b"Blue \xff\xfe tent"))


BAD_DATA: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing column": (_edit_csv("items.csv", lambda f: f.drop(columns=["title"])), "title"),
    "duplicate id": (_edit_csv("items.csv", lambda f: pd.concat([f, f.iloc[[2]]])), "duplicate"),
    "unknown item": (
        _edit_csv("interactions.csv", lambda f: f.assign(item_id=f["item_id"].where(f.index != 7, "ghost"))),
        "ghost",
    ),
    "empty file": (_write_bytes("interactions.csv", b""), "empty"),
    "bad timestamp": (
        _edit_csv("interactions.csv", lambda f: f.assign(timestamp=f["timestamp"].where(f.index != 3, "soon"))),
        "timestamp",
    ),
    "non-utf8": (_non_utf8, "utf-8"),
    "wrong extension": (lambda folder: (folder / "items.csv").rename(folder / "items.txt"), ".txt"),
    "missing folder": (lambda folder: None, "not found"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
@pytest.mark.parametrize("command", ["validate", "evaluate"])
def test_bad_data_is_one_error_line(case: str, command: str, tmp_path: Path) -> None:
    folder = tmp_path / "missing" if case == "missing folder" else write_shop(tmp_path / "shop")
    breaks, expected = BAD_DATA[case]
    breaks(folder)
    out = tmp_path / "out.json"
    extra = [*LCO, *FAST, "--out", str(out)] if command == "evaluate" else []
    result = zsrec(command, str(folder), *extra)
    assert_user_error(result, contains=expected)
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--holdout-fraction", "1.5"], "holdout_fraction"),
        (["--holdout-fraction", "0"], "holdout_fraction"),
        (["--k", "0"], "positive integers"),
        (["--k", "10,x"], "positive integers"),
        (["--models", "random,nope"], "unknown model 'nope'"),
        (["--models", ""], "models"),
        (["--pool", "sideways"], "pool"),
        (["--protocol", "leave-one-out", "--pool", "new"], "pool 'new'"),
        (["--protocol", "random-split"], "protocol"),
        (["--level", "0"], "level"),
        (["--min-history", "0"], "min_history"),
        (["--bootstrap", "-1"], "n_bootstrap"),
        (["--level", "2", "--categories", "Hammocks"], "Hammocks"),
        (["--encoder", "/no/such/encoder"], "encoder"),
    ],
)
def test_bad_options_write_nothing(options: list[str], expected: str, shop_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = zsrec("evaluate", str(shop_dir), "--encoder", "hashing", *options, "--out", str(out))
    assert_user_error(result, contains=expected)
    assert not out.exists()


def test_out_into_a_folder_is_refused(shop_dir: Path, tmp_path: Path) -> None:
    result = zsrec("evaluate", str(shop_dir), "--models", "random", "--out", str(tmp_path))
    assert_user_error(result, contains="is a folder")


def test_option_type_errors_exit_2(shop_dir: Path) -> None:
    result = zsrec("evaluate", str(shop_dir), "--seed", "abc")
    assert result.exit_code == 2
    assert "--seed" in result.stderr


# -- recommend --------------------------------------------------------------------------------------------
def test_recommend_shows_the_users_theme_with_reasons(shop_dir: Path) -> None:
    result = zsrec("recommend", str(shop_dir), "--user", "outdoor-0", "--k", "5", "--encoder", "hashing")
    assert result.exit_code == 0, result.output
    assert "profile: likes outdoor things" in result.stdout
    assert result.stdout.count("[Outdoor > ") == 5  # every recommendation from the user's theme
    assert "Kitchen" not in result.stdout
    assert "(0." in result.stdout or "(1.00)" in result.stdout  # cosines of the contributing history items


def test_recommend_within_a_category(shop_dir: Path) -> None:
    result = zsrec("recommend", str(shop_dir), "--user", "kitchen-1", "--category", "Sleeping Bags", "--model", "tfidf")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("[Outdoor > Sleeping Bags]") == ITEMS_PER_CATEGORY
    assert "Tents" not in result.stdout


def test_recommend_scores_a_new_text(shop_dir: Path) -> None:
    def cosine(text: str) -> float:
        result = zsrec("recommend", str(shop_dir), "--user", "outdoor-2", "--text", text, "--encoder", "hashing")
        assert result.exit_code == 0, result.output
        match = re.search(r"cosine to user outdoor-2's vector: (-?[0-9.]+)", result.stdout)
        assert match, result.stdout
        assert "most similar items in their history" in result.stdout
        return float(match.group(1))

    assert cosine("a camping tent for hiking trips in the mountains") > cosine("printer paper for the office")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--user", "nobody"], "unknown user id 'nobody'"),
        (["--user", "outdoor-0", "--model", "popularity-oracle"], "popularity-oracle"),
        (["--user", "outdoor-0", "--model", "tfidf", "--text", "a tent"], "--text"),
        (["--user", "outdoor-0", "--model", "nope"], "unknown model"),
        (["--user", "outdoor-0", "--model", "tfidf", "--category", "Hammocks"], "Hammocks"),
        (["--user", "outdoor-0", "--k", "0"], "k must be"),
    ],
)
def test_recommend_errors(options: list[str], expected: str, shop_dir: Path) -> None:
    assert_user_error(zsrec("recommend", str(shop_dir), "--encoder", "hashing", *options), contains=expected)


def test_models_lists_the_registry() -> None:
    result = zsrec("models")
    assert result.exit_code == 0
    assert "popularity-oracle (leak)" in result.stdout and "zero-shot-mean" in result.stdout


# -- demo -------------------------------------------------------------------------------------------------
def test_demo_runs_end_to_end_with_the_fake_encoder(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    result = zsrec("demo", "--fast", "--encoder", "hashing", "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["protocol"]["heldout_categories"] == list(DEMO_CATEGORIES)
    assert list(doc["results"]) == [m for m in DEMO_MODELS if m != "zero-shot"]
    assert "popularity-oracle (leak)" in result.stdout
    assert "ndcg@10 per held-out category" in result.stdout
    assert "top 5 new items for this household" in result.stdout and "profile: age" in result.stdout
    assert "kept the 7,165 of" in result.stdout  # the reduction is said, not silent
    assert "as the first buyers arrive" in result.stdout and "2% revealed" in result.stdout
    assert "launch-ranker" in result.stdout.split("top 5 new items")[0]


@pytest.mark.parametrize(
    "argv",
    [["evaluate", "x", "--seed", "abc"], ["evaluate", "x", "--bogus"], ["frob"], ["validate"]],
    ids=["wrong-type", "unknown-option", "unknown-command", "missing-argument"],
)
def test_usage_errors_are_one_line_and_exit_2(argv, capsys) -> None:
    from zsrec.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")


# -- --version, --json, reporting -------------------------------------------------------------------------
def test_version() -> None:
    from zsrec import __version__

    result = zsrec("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"zsrec {__version__}"


def test_recommend_json(shop_dir: Path) -> None:
    result = zsrec(
        "recommend", str(shop_dir), "--user", "kitchen-1", "--category", "Knives", "--model", "tfidf", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"] == "tfidf" and doc["user_id"] == "kitchen-1" and doc["category"] == "Knives"
    shown = zsrec("recommend", str(shop_dir), "--user", "kitchen-1", "--category", "Knives", "--model", "tfidf")
    recommended = doc["recommendations"]
    assert len(recommended) == shown.stdout.count("[Kitchen > Knives]") > 0
    assert {r["category"] for r in recommended} == {"Kitchen > Knives"}
    assert [r["score"] for r in recommended] == sorted((r["score"] for r in recommended), reverse=True)
    text = zsrec(
        "recommend", str(shop_dir), "--user", "outdoor-2", "--text", "a tent", "--encoder", "hashing", "--json"
    )
    assert text.exit_code == 0, text.output
    assert set(json.loads(text.stdout)) == {"model", "user_id", "text", "cosine", "similar_history"}


def test_progress_bars_fit_80_columns_and_messages_go_through_logging() -> None:
    import io

    from rich.console import Console
    from rich.progress import Progress

    from zsrec.reporting import LoggingReporter, console_logging, progress_columns, short

    description = "scoring zero-shot-hybrid on the new and the whole pool"
    screen = Console(file=io.StringIO(), width=80, record=True, force_terminal=True)
    progress = Progress(*progress_columns(200), console=screen, auto_refresh=False)
    progress.add_task(short(description), total=200, completed=50)
    screen.print(progress.get_renderable())
    line = screen.export_text().rstrip("\n")
    assert len(line) <= 80 and "50/200" in line and "eta" in line and line.startswith("scoring zero-shot-hybr")
    terminal = LoggingReporter(Console(file=io.StringIO(), force_terminal=True, width=80))
    assert terminal.progress_bars
    with terminal.progress(description, 3) as advance:
        advance(3)
    assert not LoggingReporter(Console(file=io.StringIO())).progress_bars  # piped: no bars
    log = io.StringIO()
    reporter = console_logging(Console(file=log, width=200))
    reporter.message("fitting tfidf")
    reporter.warning("2 items had an empty title")
    assert log.getvalue().splitlines() == ["fitting tfidf", "warning: 2 items had an empty title"]


# -- launch protocol --------------------------------------------------------------------------------------
LAUNCH_ARGS = ["--protocol", "launch", *LCO, "--k", "10", *FAST]


def test_evaluate_launch_protocol_reports_old_and_new_targets(shop_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "launch.json"
    result = zsrec(
        "evaluate", str(shop_dir), *LAUNCH_ARGS, "--models", "als,interleave,launch-blend", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "launch pool" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["protocol"]["name"] == "launch" and doc["protocol"]["test_fraction"] == 0.2
    for model in ("als", "interleave", "launch-blend"):
        metrics = doc["results"][model]["launch"]
        assert {"ndcg@10", "recall@10", "recall@10_new", "recall@10_warm", "new_share@10", "ndcg@10_ci"} <= set(metrics)
        assert 0.0 <= metrics["new_share@10"] <= 1.0
        assert metrics["paired"]["reference"] == "als"
    assert doc["results"]["als"]["launch"]["paired"]["ndcg@10_gain"] == 0.0


def test_launch_protocol_with_too_short_histories_is_one_clear_error(shop_dir: Path) -> None:
    result = zsrec("evaluate", str(shop_dir), *LAUNCH_ARGS, "--models", "als", "--min-history", "500")
    assert_user_error(result, contains="no test user")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pool", "new"], "drop --pool"),
        (["--reference", "tfidf"], "reference"),
        (["--test-fraction", "1"], "test_fraction"),
    ],
)
def test_launch_protocol_refuses_bad_options(shop_dir: Path, extra: list[str], message: str) -> None:
    assert_user_error(zsrec("evaluate", str(shop_dir), *LAUNCH_ARGS, "--models", "als", *extra), contains=message)
