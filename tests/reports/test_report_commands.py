"""`--report` on the commands: evaluate (with --draws) and robustness write their HTML report beside the JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_docs import assert_self_contained, images, section_titles
from shop_fixtures import write_tiny_shop
from typer.testing import CliRunner

from zsrec.cli import app

SPLIT = ["--level", "2", "--min-history", "2", "--encoder", "hashing", "--bootstrap", "0"]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


def test_evaluate_with_draws_writes_the_report(tmp_path: Path) -> None:
    shop = write_tiny_shop(tmp_path)
    report = tmp_path / "out" / "report.html"
    args = ["evaluate", str(shop), *SPLIT, "--models", "random,tfidf", "--draws", "2", "--report", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = report.read_text()
    assert section_titles(page)[:2] == ["Run facts", "Over the draws"]
    assert len(images(page)) == 5 and "Ratio to the strongest baseline" in page  # 2 spreads, 2 draws, 1 heatmap
    assert_self_contained(page)


def test_robustness_writes_the_report(tmp_path: Path) -> None:
    shop = write_tiny_shop(tmp_path)
    report = tmp_path / "robustness.html"
    args = ["robustness", str(shop), *SPLIT, "--categories", "Sleeping Bags;Knives", "--models", "tfidf"]
    result = CliRunner().invoke(app, [*args, "--attacks", "typos,no-brand", "--report", str(report)])
    assert result.exit_code == 0, result.output
    page = report.read_text()
    assert "Drop in ndcg@10 per perturbation" in page and len(images(page)) == 2


def test_an_unwritable_report_path_fails_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(app, ["evaluate", "completejourney", "--report", str(tmp_path / "file" / "r.html")])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: --report ")
