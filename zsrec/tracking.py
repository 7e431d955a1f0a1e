"""Experiment tracking with MLflow (the optional `zsrec[tracking]` extra).

A run is tracked when `MLFLOW_TRACKING_URI` is set or a URI is given (`--mlflow`). Its params are the
resolved options, the split and each model's settings; its metrics are every scalar metric per model, pool
and cut-off (per draw as steps, with `--draws`); its artifacts are the result JSON, the HTML report and a
trained model folder. MLflow is imported only here and only when tracking is asked for.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsrec.errors import ZsrecError

TRACKING_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
MISSING_EXTRA = "MLflow tracking needs the tracking extra: pip install 'zsrec[tracking]'"
PARAM_CHARS = 6000  # MLflow refuses longer param values
BATCH = 100  # MLflow's most params or metrics per logging call
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /:]")


class TrackingError(ZsrecError):
    """Tracking was asked for but cannot happen (the extra is missing, or the store refused the run)."""


@dataclass
class TrackedRun:
    """What one command logs: `metrics` are (key, value, step) triples."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # logged at the artifact root
    folders: dict[str, Path] = field(default_factory=dict)  # {artifact path: folder}
    documents: dict[str, Any] = field(default_factory=dict)  # {file name: JSON-ready value} logged as files


def tracking_uri(option: str | None) -> str | None:
    """The store to log to: the `--mlflow` value, else `MLFLOW_TRACKING_URI`, else None (no tracking)."""
    return option or os.environ.get(TRACKING_ENV) or None


def require_mlflow() -> Any:
    """The mlflow module, or TrackingError with the one line that says how to get it."""
    try:
        import mlflow
    except ImportError as err:
        raise TrackingError(MISSING_EXTRA) from err
    return mlflow


def run_name(command: Sequence[str]) -> str:
    """The MLflow run name of a command line: the subcommand and its dataset or model folder."""
    words = [w for w in command if not w.startswith("-")]
    if words and words[0] == "zsrec":
        words = words[1:]
    return " ".join(Path(w).name if "/" in w else w for w in words[:2]) or "zsrec"


def flat_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: dotted keys, text values (lists as JSON), cut to MLflow's limit."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flat_params(value, f"{name}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            out[_key(name)] = text[:PARAM_CHARS]
    return out


def result_params(doc: Mapping[str, Any]) -> dict[str, str]:
    """The split, encoder, run settings and each model's settings of a result document."""
    params = flat_params(doc.get("protocol") or {}, "split.")
    for key in ("dataset", "encoder"):
        if doc.get(key) is not None:
            params[key] = str(doc[key])
    if doc.get("settings"):
        params |= flat_params(doc["settings"], "settings.")
    first = doc["draws"][0] if "draws" in doc else next(iter((doc.get("reveal") or {}).values()), doc)
    for model, info in (first.get("models") or {}).items():
        if isinstance(info, Mapping) and "config" in info:
            params |= flat_params(info["config"], f"model.{model}.")
    if doc.get("config"):
        params |= flat_params(doc["config"], "option.")
    return params


def result_metrics(doc: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """Every scalar metric of a result document as (model/pool/metric, value, step).

    One evaluation: step 0. Many draws: each draw's value at step = draw index, and the median over the draws
    under `.../median`. Warm-up: the reveal share in the key. Robustness: clean and per-attack values.
    """
    if "draws" in doc:
        triples = []
        for step, draw in enumerate(doc["draws"]):
            triples += [(k, v, step) for k, v, _ in result_metrics(draw)]
        summary = doc.get("summary") or {}
        shares = doc.get("reveal_values") or []
        medians = {f"reveal_{v}": summary[v] for v in shares} if len(shares) > 1 else {"": summary}
        for prefix, per_model in medians.items():
            for model, per_pool in per_model.items():
                for pool, metrics in per_pool.items():
                    for metric, stats in metrics.items():
                        if stats.get("median") is not None:
                            triples.append((_key(prefix, model, pool, metric, "median"), stats["median"], 0))
        return triples
    if "reveal" in doc:
        return [(_key(f"reveal_{v}", k), x, s) for v, d in doc["reveal"].items() for k, x, s in result_metrics(d)]
    if "stuffed_items" in doc:
        return list(_robustness_metrics(doc["results"]))
    return [
        (_key(model, pool, metric), float(value), 0)
        for model, per_pool in doc["results"].items()
        for pool, metrics in per_pool.items()
        for metric, value in metrics.items()
        if _is_number(value)
    ]


def _robustness_metrics(results: Mapping[str, Any]) -> Iterator[tuple[str, float, int]]:
    for model, r in results.items():
        for key, value in r["clean"].items():
            if _is_number(value):
                yield _key(model, "clean", key), float(value), 0
        for attack, values in r["attacks"].items():
            for key, value in values.items():
                if _is_number(value):
                    yield _key(model, attack, key), float(value), 0


def _key(*parts: str) -> str:
    """An MLflow key: `@` spelled `_at_`, other characters MLflow refuses as `_`."""
    joined = "/".join(p for p in parts if p)
    return _UNSAFE.sub("_", joined.replace("@", "_at_"))


def result_run(doc: Mapping[str, Any], *, files: Sequence[Path] = ()) -> TrackedRun:
    """What to log for a result document: its params and metrics, the document itself as `result.json`,
    and `files` (the HTML report)."""
    command = doc.get("command") or ()
    return TrackedRun(
        name=run_name(command),
        params=result_params(doc),
        metrics=result_metrics(doc),
        tags=_tags(doc),
        files=list(files),
        documents={"result.json": dict(doc)},
    )


def training_run(record: Mapping[str, Any], folder: Path, *, config: Mapping[str, Any] | None = None) -> TrackedRun:
    """What to log for `zsrec train`: the record's split and encoder, the model's settings (its
    `config.json`), training time and size, the per-epoch log as steps, and the model folder itself."""
    params = flat_params({k: record.get(k) for k in ("model", "protocol", "level", "encoder", "members")})
    params |= flat_params(record.get("split_settings") or {}, "split.")
    params |= flat_params(record.get("dataset") or {}, "dataset.")
    model_config = folder / "config.json"
    if model_config.is_file():
        params |= flat_params(json.loads(model_config.read_text(encoding="utf-8")), "model.")
    if config:
        params |= flat_params(config, "option.")
    metrics = [
        (key, float(record[key]), 0)
        for key in ("train_seconds", "n_trainable_params", "peak_memory_mib")
        if isinstance(record.get(key), int | float)
    ]
    log = record.get("training_log")
    if isinstance(log, list):
        for step, entry in enumerate(log):
            if isinstance(entry, Mapping):
                metrics += [(_key("train", k), float(v), step) for k, v in entry.items() if _is_number(v)]
    return TrackedRun(
        name=run_name(record.get("command") or ()),
        params=params,
        metrics=metrics,
        tags=_tags(record),
        folders={"model": folder},
    )


def _tags(doc: Mapping[str, Any]) -> dict[str, str]:
    tags = {"zsrec.command": " ".join(doc.get("command") or ())[:PARAM_CHARS]}
    if doc.get("zsrec_version"):
        tags["zsrec.version"] = str(doc["zsrec_version"])
    return tags


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def log_run(uri: str, run: TrackedRun, *, experiment: str | None = None) -> str:
    """Log `run` to the MLflow store at `uri`; returns the run id. Store errors end as TrackingError."""
    require_mlflow()
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    experiment = experiment or os.environ.get(EXPERIMENT_ENV) or None

    try:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment)
        created = client.create_run(experiment_id, run_name=run.name, tags=run.tags)
        run_id = created.info.run_id
        params = [Param(k, v) for k, v in run.params.items()]
        metrics = [Metric(k, v, 0, s) for k, v, s in run.metrics]
        for i in range(0, max(len(params), len(metrics)), BATCH):
            client.log_batch(run_id, metrics=metrics[i : i + BATCH], params=params[i : i + BATCH])
        _log_artifacts(client, run_id, run)
        client.set_terminated(run_id)
    except MlflowException as err:
        raise TrackingError(f"MLflow store {uri}: {err.message}") from err
    return run_id


def _experiment_id(client: Any, name: str | None) -> str:
    if name is None:
        return "0"  # MLflow's Default experiment, which every store creates
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _log_artifacts(client: Any, run_id: str, run: TrackedRun) -> None:
    for path in run.files:
        client.log_artifact(run_id, str(path))
    for artifact_path, folder in run.folders.items():
        client.log_artifacts(run_id, str(folder), artifact_path=artifact_path)
    if run.documents:
        with tempfile.TemporaryDirectory(prefix="zsrec-mlflow-") as tmp:
            for name, value in run.documents.items():
                path = Path(tmp) / name
                path.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n", encoding="utf-8")
                client.log_artifact(run_id, str(path))
