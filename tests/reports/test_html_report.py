"""HTML reports: the expected figures and sections per kind of result, self-contained, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_docs import (
    assert_self_contained,
    draws_doc,
    evaluation_doc,
    images,
    robustness_doc,
    scenarios_doc,
    section_titles,
    warmup_doc,
)
from typer.testing import CliRunner

from zsrec.cli import app
from zsrec.errors import ConfigError
from zsrec.reports.html import report_html, write_report
from zsrec.reports.sections import ndcg_figure, report_kind

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_an_evaluation_report_shows_ci_bars_per_pool_and_a_category_heatmap() -> None:
    page = report_html(evaluation_doc())
    assert section_titles(page) == ["Run facts", "NDCG@k per model, 95% CI", "Per held-out category"]
    pngs = images(page)
    assert len(pngs) == 4  # NDCG bars for the new and the all pool, a heatmap for each
    assert all(png.startswith(PNG_SIGNATURE) and len(png) > 2000 for png in pngs)
    assert "NDCG@k on the new pool" in page and "NDCG@k on the all pool" in page
    for fact in ("zsrec evaluate tiny-shop --level 2", "0.0.0", "2026-12-03T12:00:00+00:00", "80 items", "seed 0"):
        assert fact in page
    assert "Outdoor &gt; Tents; Kitchen &gt; Knives" in page  # escaped, not raw markup
    assert_self_contained(page)


def test_a_draws_report_shows_the_spread_the_ratio_and_the_categories_over_draws() -> None:
    page = report_html(draws_doc())
    assert section_titles(page) == [
        "Run facts",
        "Over the draws",
        "NDCG@k per model in each draw, 95% CI",
        "Per held-out category",
    ]
    assert len(images(page)) == 6  # spread, ratio, one CI figure per draw, heatmap
    assert "NDCG@k on the new pool (draw 3, seed 2)" in page
    assert "Ratio to the strongest baseline of each draw" in page and "over 3 draws" in page
    assert "seeds 0, 1, 2" in page
    assert_self_contained(page)


def test_robustness_and_scenario_reports_have_their_figures() -> None:
    robust = report_html(robustness_doc())
    assert "Drop in ndcg@10 per perturbation" in robust and len(images(robust)) == 2
    scenarios = report_html(scenarios_doc())
    assert section_titles(scenarios) == [
        "Run facts",
        "Calibration: reliability diagrams",
        "Forecast against real adopters",
    ]
    assert len(images(scenarios)) == 3  # one reliability diagram, two forecasts against real adopters
    assert_self_contained(robust)
    assert_self_contained(scenarios)


def test_warm_up_reports_draw_ndcg_by_share_revealed() -> None:
    page = report_html(warmup_doc())
    assert section_titles(page)[:2] == ["Run facts", "Warm-up"] and "by share of adopters revealed" in page
    demo = report_html(evaluation_doc(), warmup=warmup_doc(), title="zsrec demo")
    assert section_titles(demo)[-1] == "After launch: as the first buyers arrive"
    assert len(images(demo)) == 5  # two pools' bars and heatmaps, then the launch story
    assert_self_contained(demo)


def test_the_same_numbers_give_the_same_figures() -> None:
    def figure(shift: float) -> bytes:
        return ndcg_figure(evaluation_doc(shift)["results"], "new").png

    assert figure(0.0) == figure(0.0) and figure(0.1) != figure(0.0)


def test_a_document_that_is_no_result_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a zsrec result document"):
        report_kind({"hello": 1})
    assert report_kind(draws_doc()) == "draws" and report_kind(robustness_doc()) == "robustness"


def test_a_failed_report_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with pytest.raises(KeyError):
        write_report(out, {"results": {"m": {"new": {}}}, "protocol": {}, "draws": [], "summary": {}})
    assert list(tmp_path.iterdir()) == []


def test_zsrec_report_turns_a_saved_result_into_html(tmp_path: Path) -> None:
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(evaluation_doc()))
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(saved), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(images(out.read_text())) == 4
    saved.write_text("[1, 2]")
    bad = CliRunner().invoke(app, ["report", str(saved), "--out", str(tmp_path / "other.html")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1
    assert not (tmp_path / "other.html").exists()
