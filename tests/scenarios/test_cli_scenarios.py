"""`zsrec audience / similar / forecast / profile` end to end on the two-department shop written as CSV files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from zsrec.cli import app

FAST = ["--encoder", "hashing"]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


def zsrec(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_user_error(result: Result, contains: str) -> None:
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and contains in lines[0], result.stderr


def test_audience_lists_campers_for_a_camping_ad(shop_dir: Path) -> None:
    result = zsrec("audience", str(shop_dir), "--text", "lantern for camping outdoor", "--k", "4", *FAST)
    assert result.exit_code == 0, result.output
    users = [line.split()[2] for line in result.stdout.splitlines() if line.strip()[:2].rstrip(".").isdigit()]
    assert len(users) == 4 and all(int(u[1:]) % 2 == 0 for u in users)


def test_similar_other_categories_leaves_the_items_category(shop_dir: Path) -> None:
    result = zsrec("similar", str(shop_dir), "--item", "i0", "--other-categories", "--level", "2", "--k", "3", *FAST)
    assert result.exit_code == 0, result.output
    listed = [line for line in result.stdout.splitlines() if line.strip().startswith(("1.", "2.", "3."))]
    assert len(listed) == 3 and not any("[Outdoor > Tents]" in line for line in listed)


def test_forecast_of_a_hidden_category_shows_the_real_adopters(shop_dir: Path) -> None:
    result = zsrec("forecast", str(shop_dir), "--category", "Lanterns", *FAST)
    assert result.exit_code == 0, result.output
    assert "expected to adopt it" in result.stdout
    assert "actually adopted in the data (hidden from the forecast): 23" in result.stdout


def test_profile_names_the_users_interests(shop_dir: Path) -> None:
    result = zsrec("profile", str(shop_dir), "--user", "u1", "--k", "5", *FAST)
    assert result.exit_code == 0, result.output
    assert "Kitchen >" in result.stdout and "Outdoor >" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audience", "--text", "x", "--category", "Mugs"], "exactly one of --text, --items or --category"),
        (["similar", "--item", "nope"], "unknown item ids"),
        (["forecast", "--category", "Hoses"], "not found at level 2"),
        (["forecast"], "exactly one of --category or --text"),
        (["profile", "--user", "nobody"], "unknown user id"),
        (["forecast", "--text", "tent", "--calibration", "magic"], "calibration must be one of"),
    ],
)
def test_bad_input_is_one_error_line(shop_dir: Path, args: list[str], message: str) -> None:
    assert_user_error(zsrec(args[0], str(shop_dir), *args[1:], *FAST), message)
