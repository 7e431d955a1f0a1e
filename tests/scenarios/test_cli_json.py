"""`--json` on the scenario commands: one JSON document on stdout holding what the text shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zsrec.cli import app


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    ("command", "options", "key"),
    [
        ("similar", ["--item", "i0", "--k", "3"], "similar"),
        ("audience", ["--text", "lantern for camping outdoor", "--k", "3"], "users"),
        ("profile", ["--user", "u0", "--k", "2"], "tags"),
        ("forecast", ["--category", "Lanterns"], "forecast"),
    ],
)
def test_scenario_commands_print_one_json_document(command: str, options: list[str], key: str, shop_dir: Path) -> None:
    text = CliRunner().invoke(app, [command, str(shop_dir), *options, "--encoder", "hashing"])
    result = CliRunner().invoke(app, [command, str(shop_dir), *options, "--encoder", "hashing", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    if command == "forecast":
        assert doc["actual"] == 23 and doc["forecast"]["expected_adopters"] > 0
        assert f"{doc['forecast']['expected_adopters']:.1f} of" in text.stdout
        return
    assert len(doc[key]) == (2 if command == "profile" else 3)
    first = doc[key][0]
    shown = first.get("item_id") or first.get("user_id") or first.get("tag")
    assert str(shown) in text.stdout


def test_forecast_json_adds_the_chosen_method_and_its_validation(shop_dir: Path) -> None:
    args = ["forecast", str(shop_dir), "--category", "Lanterns", "--encoder", "hashing"]
    text = CliRunner().invoke(app, args)
    doc = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert {"category", "text", "forecast", "actual", "category_items", "calibration"} <= set(doc)
    chosen, validation = doc["chosen"], doc["validation"]
    assert chosen["method"] == validation["method"] in chosen["by_method"]
    assert chosen["low"] <= chosen["adopters"] <= chosen["high"]
    assert chosen["by_method"]["calibrated probabilities"] == doc["forecast"]["expected_adopters"]
    assert set(validation["errors"]) == set(chosen["by_method"])
    assert f"Lanterns: forecast {chosen['adopters']:,.0f} adopters" in text.stdout
    assert f"method: {chosen['method']}" in text.stdout and "; real: 23" in text.stdout
