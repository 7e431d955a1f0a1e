"""`zsrec train` writes a model folder that `zsrec evaluate --models FOLDER` reads beside registered models, and
that is refused on a split whose test interactions it learned from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shop_fixtures import write_department_shop, write_tiny_shop
from test_cli import FAST, LCO, assert_user_error, zsrec
from test_run import write_shop

from zsrec.data import load_dataset
from zsrec.data.splits import SplitSettings, make_split
from zsrec.errors import ConfigError
from zsrec.training.artifacts import (
    TRAINING_FILE,
    check_evaluable,
    dataset_fingerprint,
    load_model_folder,
    save_model_folder,
)

ENCODER = ["--encoder", "hashing"]
HELD = tuple(LCO[-1].split(";"))


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shop(tmp_path_factory.mktemp("shop"), with_users=True)


def train(shop_dir: Path, out: Path, model: str, *split: str) -> None:
    result = zsrec("train", str(shop_dir), "--model", model, *split, *ENCODER, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout


def test_a_trained_folder_evaluates_beside_fitted_models_with_the_same_scores(shop_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "zs"
    train(shop_dir, folder, "zero-shot-mean", "--protocol", "leave-category-out", *LCO)
    record = json.loads((folder / TRAINING_FILE).read_text())
    assert record["protocol"] == "leave-category-out" and record["heldout_categories"]
    assert record["model"] == "zero-shot-mean" and record["encoder"] == "hashing"
    assert record["dataset"]["n_items"] > 0 and record["train_seconds"] >= 0

    out = tmp_path / "r.json"
    args = ["evaluate", str(shop_dir), *LCO, *FAST, "--models", f"zero-shot-mean,{folder}", "--out", str(out)]
    result = zsrec(*args)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())["results"]
    fitted, loaded = results["zero-shot-mean"]["new"], results[str(folder)]["new"]
    assert loaded["ndcg@10"] == pytest.approx(fitted["ndcg@10"])
    assert loaded["ndcg@10"] > 0


def test_a_folder_trained_on_everything_is_refused_for_evaluation(shop_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "all"
    train(shop_dir, folder, "tfidf")  # default protocol: none (every interaction)
    assert json.loads((folder / TRAINING_FILE).read_text())["protocol"] == "none"
    result = zsrec("evaluate", str(shop_dir), *LCO, *FAST, "--models", f"tfidf,{folder}")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith("error: ") and "saw interactions" in result.stderr
    assert "fitting tfidf" not in result.stderr  # refused before any model is fitted


def test_a_folder_is_refused_on_other_test_categories(shop_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(str(shop_dir))
    folder = tmp_path / "other"
    train(shop_dir, folder, "tfidf", "--protocol", "leave-category-out", "--level", "2", "--categories", "Tents")
    _, record = load_model_folder(folder)
    split = make_split(data, SplitSettings(level=2, categories=HELD))
    with pytest.raises(ConfigError, match="trained on interactions of"):
        check_evaluable(record, data, split, str(folder), min_history=3)
    # ...while the split it was trained for passes, and so does a subset of its held-out categories
    check_evaluable(record, data, make_split(data, SplitSettings(level=2, categories=("Tents",))), "f", min_history=3)
    wide = tmp_path / "wide"
    train(shop_dir, wide, "tfidf", "--protocol", "leave-category-out", "--level", "1", "--categories", "Outdoor")
    _, record = load_model_folder(wide)
    check_evaluable(record, data, make_split(data, SplitSettings(level=2, categories=("Tents",))), "w", min_history=3)


def test_a_folder_is_refused_on_another_catalog(shop_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    train(shop_dir, folder, "tfidf", "--protocol", "leave-category-out", *LCO)
    _, record = load_model_folder(folder)
    data = load_dataset(str(shop_dir))
    smaller = data.subset_items(np.arange(data.n_items) != 0, reason="test")
    assert dataset_fingerprint(smaller) != record.dataset
    split = make_split(smaller, SplitSettings(level=2, categories=HELD))
    with pytest.raises(ConfigError, match="another catalog"):
        check_evaluable(record, smaller, split, str(folder), min_history=3)


def test_train_refuses_bad_requests_and_writes_nothing(shop_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert_user_error(zsrec("train", str(shop_dir), "--model", "nope", "--out", str(out)), contains="unknown model")
    assert_user_error(
        zsrec("train", str(shop_dir), "--model", "tfidf", "--members", "tfidf", "--out", str(out)),
        contains="--members",
    )
    assert_user_error(
        zsrec("train", str(shop_dir), "--model", "tfidf", "--protocol", "sideways", "--out", str(out)),
        contains="protocol",
    )
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_user_error(zsrec("train", str(shop_dir), "--model", "tfidf", "--out", str(out)), contains="not empty")
    assert (out / "keep.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["m"] or all(
        not p.name.startswith(".m.") for p in tmp_path.iterdir()
    )


def test_a_failed_save_leaves_the_old_folder_untouched(shop_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    train(shop_dir, out, "tfidf")
    model, record = load_model_folder(out)
    before = sorted(p.name for p in out.iterdir())

    def explode(folder: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_model_folder(model, record, out, overwrite=True, extra=explode)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["m"]  # no temporary folder left


def test_a_trained_folder_reloads_in_a_fresh_process_with_identical_scores(shop_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "zs"
    train(shop_dir, folder, "zero-shot-mean")
    model, _ = load_model_folder(folder)
    here = model.score(np.arange(5), np.arange(model.n_items_))
    code = (
        "import sys, numpy as np; from zsrec.training.artifacts import load_model_folder; "
        "m, _ = load_model_folder(sys.argv[1]); np.save(sys.argv[2], m.score(np.arange(5), np.arange(m.n_items_)))"
    )
    subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "s.npy")], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), here)


def test_a_trained_text_model_folder_serves(shop_dir: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from zsrec.service.app import create_app

    folder = tmp_path / "zs"
    train(shop_dir, folder, "zero-shot-mean")
    data = load_dataset(str(shop_dir))
    with TestClient(create_app(folder)) as client:
        health = client.get("/health")
        assert health.status_code == 200, health.text
        assert data.n_items in health.json().values(), health.json()  # the item count
        user = str(data.users["user_id"].iloc[0])
        response = client.post("/recommend", json={"user_id": user, "k": 3})
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == 3


def test_train_adversarial_and_training_options_reach_the_trainer_and_its_config(tmp_path: Path) -> None:
    out, shop = tmp_path / "lora-aug", write_tiny_shop(tmp_path)  # campers and cooks: pairs across categories
    result = zsrec(
        "train", str(shop), "--model", "two-tower-lora", *ENCODER, "--out", str(out),
        "--adversarial", "method=fgm,epsilon=0.5,augment=typos+stuffing",
        "--training", "epochs=1,min_validation_users=1000000,lr=0.001",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    training = json.loads((out / "config.json").read_text())["settings"]["training"]
    assert training["epochs"] == 1 and training["lr"] == 0.001 and training["min_validation_users"] == 1_000_000
    adversarial = training["adversarial"]
    assert adversarial["method"] == "fgm" and adversarial["epsilon"] == 0.5
    assert adversarial["augment"] == ["typos", "stuffing"]
    log = json.loads((out / TRAINING_FILE).read_text())["training_log"]
    assert [e["epoch"] for e in log["epochs"]] == [1]  # no validation fold: no untrained epoch 0 to fall back on
    assert all("adversarial_loss" in epoch for epoch in log["epochs"])  # the attack really ran


def test_a_head_trains_against_stuffing_from_the_cli(tmp_path: Path) -> None:
    out, shop = tmp_path / "head-aug", write_tiny_shop(tmp_path)
    result = zsrec(
        "train", str(shop), "--model", "two-tower-head", *ENCODER, "--out", str(out),
        "--adversarial", "augment=stuffing,augment_prob=0.5", "--training", "epochs=2,hidden_dim=8",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    training = json.loads((out / "config.json").read_text())["settings"]["training"]
    assert training["epochs"] == 2 and training["hidden_dim"] == 8
    assert training["adversarial"]["augment"] == ["stuffing"] and training["adversarial"]["augment_prob"] == 0.5


@pytest.mark.parametrize(
    ("model", "option", "spec", "message"),
    [
        ("tfidf", "--adversarial", "method=fgm", "--adversarial applies to"),
        ("two-tower-lora", "--adversarial", "method=sideways", "method must be one of"),
        ("two-tower-lora", "--adversarial", "epsilon", "field=value"),
        ("two-tower-lora", "--adversarial", "epsilon=big", "not a number"),
        ("two-tower-lora", "--adversarial", "strength=2", "no field 'strength'"),
        ("two-tower-lora", "--adversarial", "augment=spam", "augment must name"),
        ("cross-encoder", "--adversarial", "augment=typos", "no text augmentation"),
        ("popularity", "--training", "epochs=1", "--training applies to"),
        ("mlp-head", "--adversarial", "method=fgm", "only adversarial augment=stuffing"),
        ("two-tower-head", "--training", "epochs=0", "epochs must be >= 1"),
        ("two-tower-lora", "--training", "epochs=1,epochs=2", "twice"),
        ("two-tower-lora", "--training", "adversarial=fgm", "cannot be set"),
        ("cross-encoder", "--training", "max_pairs=many", "not a number"),
    ],
)
def test_train_refuses_bad_adversarial_and_training_settings(
    shop_dir: Path, tmp_path: Path, model: str, option: str, spec: str, message: str
) -> None:
    out = tmp_path / "m"
    result = zsrec("train", str(shop_dir), "--model", model, *ENCODER, option, spec, "--out", str(out))
    assert_user_error(result, contains=message)
    assert not out.exists()


def test_validation_level_sets_where_a_serving_zero_shot_tunes(tmp_path: Path) -> None:
    shop = write_department_shop(tmp_path / "shop")  # its default validation level (1) has no usable fold
    default = tmp_path / "default"
    train(shop, default, "zero-shot")
    assert json.loads((default / "config.json").read_text())["tuning"]["tuned"] is False
    level_two = tmp_path / "level2"
    train(shop, level_two, "zero-shot", "--validation-level", "2")
    tuning = json.loads((level_two / "config.json").read_text())["tuning"]
    assert tuning["tuned"] is True and tuning["validation_level"] == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "tfidf", "--validation-level", "2"], "applies to zero-shot and ensemble"),
        (["--model", "zero-shot", "--validation-level", "0"], "must be >= 1"),
    ],
)
def test_validation_level_is_checked(shop_dir: Path, tmp_path: Path, options: list[str], message: str) -> None:
    result = zsrec("train", str(shop_dir), *options, *ENCODER, "--out", str(tmp_path / "m"))
    assert_user_error(result, contains=message)
