"""MLflow tracking: a local sqlite store, the run's params, metrics and artifacts read back through the client;
a missing extra is one clear line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from shop_fixtures import write_tiny_shop
from typer.testing import CliRunner, Result

from zsrec.cli import app
from zsrec.tracking import MISSING_EXTRA, TrackingError, require_mlflow, result_metrics, run_name

ARGS = ["--level", "2", "--categories", "Sleeping Bags;Knives", "--min-history", "2", "--encoder", "hashing"]


def shop_in(tmp_path: Path) -> Path:
    """The tiny shop as a dataset folder named `shop` (the MLflow run name shows it)."""
    folder = tmp_path / "shop"
    folder.mkdir()
    return write_tiny_shop(folder)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)  # a sqlite store keeps its artifacts under ./mlruns


def zsrec(monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setattr(sys, "argv", ["zsrec", *args])
    return CliRunner().invoke(app, list(args))


def test_evaluate_logs_params_metrics_and_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow", reason="MLflow is the optional tracking extra: pip install 'zsrec[tracking]'")
    from mlflow.tracking import MlflowClient

    shop = shop_in(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out, report = tmp_path / "result.json", tmp_path / "report.html"
    args = ["evaluate", str(shop), *ARGS, "--models", "random,tfidf", "--bootstrap", "0"]
    result = zsrec(monkeypatch, *args, "--out", str(out), "--report", str(report), "--mlflow", uri)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs(["0"])
    assert run.info.run_name == "evaluate shop" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["split.level"] == "2" and params["encoder"] == "hashing" and params["option.models"] == "random,tfidf"
    assert params["model.tfidf.settings.analyzer"] == str(doc["models"]["tfidf"]["config"]["settings"]["analyzer"])
    metrics = run.data.metrics
    assert metrics["tfidf/new/ndcg_at_10"] == pytest.approx(doc["results"]["tfidf"]["new"]["ndcg@10"])
    assert metrics["random/new/recall_at_50"] == pytest.approx(doc["results"]["random"]["new"]["recall@50"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"result.json", "report.html"}
    logged = json.loads(Path(client.download_artifacts(run.info.run_id, "result.json", str(tmp_path))).read_text())
    assert logged["results"] == doc["results"]


def test_train_logs_the_model_folder_and_draws_log_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow", reason="MLflow is the optional tracking extra: pip install 'zsrec[tracking]'")
    from mlflow.tracking import MlflowClient

    shop = shop_in(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the environment alone turns tracking on
    trained = zsrec(monkeypatch, "train", str(shop), "--model", "tfidf", "--out", str(tmp_path / "model"))
    assert trained.exit_code == 0, trained.output
    draws = ["evaluate", str(shop), "--level", "2", "--min-history", "2", "--models", "random,tfidf"]
    assert zsrec(monkeypatch, *draws, "--draws", "2", "--bootstrap", "0").exit_code == 0

    client = MlflowClient(tracking_uri=uri)
    runs = {r.info.run_name: r for r in client.search_runs(["0"])}
    assert set(runs) == {"train shop", "evaluate shop"}
    train = runs["train shop"]
    assert train.data.params["model"] == "tfidf" and "train_seconds" in train.data.metrics
    files = {a.path for a in client.list_artifacts(train.info.run_id, "model")}
    assert {"model/config.json", "model/training.json", "model/run.yaml"} <= files
    history = client.get_metric_history(runs["evaluate shop"].info.run_id, "tfidf/new/ndcg_at_10")
    assert sorted(m.step for m in history) == [0, 1]


def test_a_missing_extra_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    with pytest.raises(TrackingError, match=r"zsrec\[tracking\]"):
        require_mlflow()
    shop = shop_in(tmp_path)
    result = zsrec(monkeypatch, "evaluate", str(shop), *ARGS, "--mlflow", "sqlite:///x.db", "--out", "r.json")
    assert result.exit_code == 2 and result.stderr == f"error: {MISSING_EXTRA}\n"
    assert not (tmp_path / "r.json").exists()  # refused before any work


def test_metric_keys_and_run_names() -> None:
    doc = {"results": {"m": {"new": {"ndcg@10": 0.5, "ndcg@10_ci": [0.4, 0.6], "n_users": 3, "per_category": {}}}}}
    assert result_metrics(doc) == [("m/new/ndcg_at_10", 0.5, 0), ("m/new/n_users", 3.0, 0)]
    assert run_name(["zsrec", "evaluate", "data/shop", "--level", "2"]) == "evaluate shop"
    assert run_name([]) == "zsrec"
