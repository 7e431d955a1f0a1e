"""`zsrec robustness`: tables on stdout, a JSON document with --out, one error line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shop_fixtures import write_tiny_shop
from typer.testing import CliRunner

from zsrec.cli import app

ARGS = ["--level", "2", "--categories", "Sleeping Bags;Knives", "--min-history", "2", "--encoder", "hashing"]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_shop(tmp_path_factory.mktemp("shop"))


def test_robustness_prints_tables_and_writes_json(shop_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "robust.json"
    result = CliRunner().invoke(
        app,
        ["robustness", str(shop_dir), *ARGS, "--models", "tfidf,zero-shot-mean", "--n-stuffed", "2", "--k", "1"]
        + ["--bootstrap", "20", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "ndcg@1 on the new pool" in result.stdout and "keyword stuffing" in result.stdout
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"tfidf", "zero-shot-mean"}
    assert doc["results"]["tfidf"]["attacks"]["stuffing"]["top1_share"] > 0
    assert doc["settings"]["attack"]["n_stuffed"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--attacks", "typos,spam"], "unknown attack 'spam'"),
        (["--typo-rate", "3"], "typo_rate must be in"),
        (["--models", "nope"], "unknown model 'nope'"),
    ],
)
def test_robustness_bad_input_is_one_error_line(shop_dir: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["robustness", str(shop_dir), *ARGS, *extra])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_robustness_of_trained_folders_reads_tampered_text_without_retraining(shop_dir: Path, tmp_path: Path) -> None:
    """A `zsrec train` folder (same split) is loaded, not refitted; a folder of another split is refused."""
    lora, other = tmp_path / "lora", tmp_path / "other"
    split = ["--protocol", "leave-category-out", *ARGS]
    for folder, options in ((lora, split), (other, ["--protocol", "leave-category-out", *ARGS[:2]])):
        made = CliRunner().invoke(
            app, ["train", str(shop_dir), "--model", "two-tower-lora", *options, "--out", str(folder)]
        )
        assert made.exit_code == 0, made.output
    out = tmp_path / "robust.json"
    result = CliRunner().invoke(
        app,
        ["robustness", str(shop_dir), *ARGS, "--models", f"{lora},tfidf", "--n-stuffed", "2", "--k", "1"]
        + ["--bootstrap", "0", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {str(lora), "tfidf"}
    assert set(doc["results"][str(lora)]["attacks"]) == {"typos", "stuffing", "noise", "no-brand"}
    refused = CliRunner().invoke(app, ["robustness", str(shop_dir), *ARGS, "--models", str(other)])
    assert refused.exit_code == 2 and "held out" in refused.output, refused.output
