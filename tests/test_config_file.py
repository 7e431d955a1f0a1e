"""`--config run.yaml`: every option from a file, flags override it, unknown keys fail, the resolved options
are recorded so that a run can be repeated from its output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from shop_fixtures import write_tiny_shop
from typer.testing import CliRunner, Result

from zsrec.cli import app
from zsrec.config_file import option_defaults, read_config_file
from zsrec.errors import ConfigError

FLAGS = ["--level", "2", "--categories", "Sleeping Bags;Knives", "--min-history", "2", "--encoder", "hashing"]
FLAGS += ["--models", "random,tfidf", "--pool", "both", "--bootstrap", "20", "--k", "5,10"]


def shop_in(tmp_path: Path) -> Path:
    """The tiny shop as a dataset folder named `shop` (the MLflow run name shows it)."""
    folder = tmp_path / "shop"
    folder.mkdir()
    return write_tiny_shop(folder)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


def zsrec(monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setattr(sys, "argv", ["zsrec", *args])
    return CliRunner().invoke(app, list(args))


def comparable(path: Path) -> dict[str, Any]:
    """A result document without what differs between two runs of the same thing: time and command line."""
    doc = json.loads(path.read_text())
    for key in ("created", "command"):
        doc.pop(key)
    for info in doc["models"].values():
        info.pop("fit_seconds"), info.pop("score_seconds")
    return doc


def write_yaml(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def test_a_config_file_run_gives_the_same_result_as_the_flags(tmp_path: Path, monkeypatch) -> None:
    shop = shop_in(tmp_path)
    out = tmp_path / "result.json"
    flags = zsrec(monkeypatch, "evaluate", str(shop), *FLAGS, "--out", str(out))
    assert flags.exit_code == 0, flags.output
    from_flags = comparable(out)
    config = write_yaml(
        tmp_path / "run.yaml",
        {
            "dataset": str(shop),
            "level": 2,
            "categories": ["Sleeping Bags", "Knives"],  # a list: joined with ";"
            "min-history": 2,  # dashes as on the command line, or underscores
            "encoder": "hashing",
            "models": ["random", "tfidf"],
            "pool": "both",
            "bootstrap": 20,
            "k": "5,10",
            "out": str(out),
        },
    )
    out.unlink()
    from_file = zsrec(monkeypatch, "evaluate", "--config", str(config))
    assert from_file.exit_code == 0, from_file.output
    assert comparable(out) == from_flags
    assert from_flags["config"]["categories"] == "Sleeping Bags;Knives" and from_flags["config"]["min_history"] == 2


def test_the_recorded_configuration_repeats_the_run_and_flags_override_it(tmp_path: Path, monkeypatch) -> None:
    shop = shop_in(tmp_path)
    first = tmp_path / "first.json"
    assert zsrec(monkeypatch, "evaluate", str(shop), *FLAGS, "--out", str(first)).exit_code == 0
    recorded = write_yaml(tmp_path / "again.yaml", json.loads(first.read_text())["config"])
    second = tmp_path / "second.json"
    again = zsrec(monkeypatch, "evaluate", "--config", str(recorded), "--out", str(second), "--seed", "4")
    assert again.exit_code == 0, again.output
    doc = comparable(second)
    assert doc["protocol"]["seed"] == 4 and doc["config"]["seed"] == 4 and doc["config"]["out"] == str(second)
    assert doc["results"]["tfidf"]["new"]["ndcg@5"] == comparable(first)["results"]["tfidf"]["new"]["ndcg@5"]


def assert_one_error_line(result: Result, *contains: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in contains:
        assert text in lines[0]


def test_an_unknown_key_fails_with_one_line_naming_it(tmp_path: Path, monkeypatch) -> None:
    config = write_yaml(tmp_path / "run.yaml", {"dataset": "completejourney", "levle": 2})
    for command in ("evaluate", "train"):
        assert_one_error_line(zsrec(monkeypatch, command, "--config", str(config)), "unknown key 'levle'")
    assert_one_error_line(zsrec(monkeypatch, "serve", "--config", str(config)), "unknown key 'dataset'", "model-dir")
    (tmp_path / "bad.yaml").write_text("level: [2\n")
    assert_one_error_line(zsrec(monkeypatch, "evaluate", "--config", str(tmp_path / "bad.yaml")), "not valid YAML")
    assert_one_error_line(zsrec(monkeypatch, "evaluate", "--config", str(tmp_path / "none.yaml")), "does not exist")


def test_serve_reads_its_model_folder_from_the_file(tmp_path: Path, monkeypatch) -> None:
    config = write_yaml(tmp_path / "serve.yaml", {"model_dir": str(tmp_path / "no-model"), "port": 8123})
    result = zsrec(monkeypatch, "serve", "--config", str(config))
    assert_one_error_line(result, "no-model")  # the folder from the file was read (and is not a model)


def test_train_writes_its_resolved_options_into_the_model_folder(tmp_path: Path, monkeypatch) -> None:
    shop = shop_in(tmp_path)
    config = write_yaml(tmp_path / "train.yaml", {"dataset": str(shop), "model": "tfidf", "seed": 3})
    folder = tmp_path / "model"
    result = zsrec(monkeypatch, "train", "--config", str(config), "--out", str(folder))
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((folder / "run.yaml").read_text())
    assert recorded["model"] == "tfidf" and recorded["seed"] == 3 and recorded["out"] == str(folder)
    again = tmp_path / "again"
    repeat = zsrec(monkeypatch, "train", "--config", str(folder / "run.yaml"), "--out", str(again))
    assert repeat.exit_code == 0, repeat.output
    assert (again / "config.json").read_text() == (folder / "config.json").read_text()


def test_option_defaults_normalise_keys_and_refuse_repeats() -> None:
    known = {"level", "min_history", "categories", "models"}
    values = option_defaults({"--level": 2, "min-history": 1, "categories": ["A", "B"], "models": ["x", "y"]}, known)
    assert values == {"level": 2, "min_history": 1, "categories": "A;B", "models": "x,y"}
    with pytest.raises(ConfigError, match="given twice"):
        option_defaults({"min-history": 1, "min_history": 2}, known)
    with pytest.raises(ConfigError, match="mapping"):
        option_defaults({"models": {"a": 1}}, known)


def test_a_config_file_must_hold_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_config_file(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert read_config_file(tmp_path / "empty.yaml") == {}
