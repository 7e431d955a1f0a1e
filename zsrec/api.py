"""The library's front door (re-exported by `zsrec`): build or load a model, and evaluate models on a dataset.

`zsrec.load_dataset` and `zsrec.from_frames` read the data; these functions do the rest with the same checks
and defaults as the `zsrec` commands.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsrec.data.dataset import Dataset
from zsrec.data.splits import SplitSettings
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings, evaluate_model
from zsrec.evaluation.run import ModelRun, check_request, evaluate_models, prepare_split, resolve_pools, result_document
from zsrec.models.base import Recommender
from zsrec.models.registry import ModelContext, parse_model_names
from zsrec.models.registry import build_model as build_registered
from zsrec.models.registry import load_model as load_saved
from zsrec.reporting import LoggingReporter


def build_model(name: str, *, encoder: str = "minilm", **settings: Any) -> Recommender:
    """An unfitted model by its registered name (`zsrec models`), e.g. `build_model("tfidf", min_df=2)`.

    Args:
        encoder: the text encoder of text models ("minilm", "e5-multilingual", "hashing" or a folder).
        settings: fields of the model's settings dataclass (e.g. `TfidfSettings`); an unknown field raises
            ConfigError listing the known ones, a bad value the settings' own error.
    """

    names = parse_model_names(name)
    if len(names) != 1:
        raise ConfigError(f"build_model takes one model name, got {name!r}")
    model = build_registered(names[0], ModelContext(encoder=encoder))
    if settings:
        if not dataclasses.is_dataclass(model.settings):
            raise ConfigError(f"{name} has no settings; got {', '.join(settings)}")
        fields = [f.name for f in dataclasses.fields(model.settings)]
        unknown = [key for key in settings if key not in fields]
        if unknown:
            raise ConfigError(f"{name} has no setting {unknown[0]!r}; settings: {', '.join(fields)}")
        model.settings = dataclasses.replace(model.settings, **settings)
    return model


def load_model(folder: str | Path) -> Recommender:
    """A fitted model from a folder written by `zsrec train` or by the model's `save`."""

    return load_saved(folder)


def evaluate(
    dataset: str | Dataset,
    models: Sequence[str | Recommender] | str,
    *,
    protocol: str = "leave-category-out",
    level: int = 1,
    categories: Sequence[str] = (),
    holdout_fraction: float = 0.2,
    min_history: int = 3,
    seed: int = 0,
    k: Sequence[int] = (10, 50),
    pool: str | None = None,
    n_bootstrap: int = 1000,
    encoder: str = "minilm",
    reporter: Any = None,
) -> dict[str, Any]:
    """Hold out part of `dataset`, fit each model on the rest and rank every candidate: `zsrec evaluate`.

    Args:
        dataset: a Dataset, or a spec string as the CLI takes (a folder, `amazon-lcrec:PATH`, `completejourney`).
        models: registered names, folders written by `zsrec train`, or Recommender objects (fitted here on the
            split's training data; their results are keyed by their `name`). A string is split at commas.
        pool: "new" (held-out items), "all" (whole catalog) or "both"; None = "new" under leave-category-out
            and "all" under leave-one-out.
        reporter: where steps and warnings go; default: the "zsrec" logger (`logging`), with progress bars
            where stderr is a terminal.
        Other arguments as the options of `zsrec evaluate`.

    Returns:
        The result document of `zsrec evaluate --out`: `result["results"][model][pool]["ndcg@10"]` and so on.
    """

    reporter = reporter or LoggingReporter()

    entries = models.split(",") if isinstance(models, str) else list(models)
    objects = {_model_key(m, entries): m for m in entries if isinstance(m, Recommender)}
    names = [m for m in entries if isinstance(m, str)]
    split_settings = SplitSettings(
        protocol=protocol,
        level=level,
        categories=tuple(categories),
        holdout_fraction=holdout_fraction,
        min_history=min_history,
        seed=seed,
    )
    ks = tuple(sorted(set(int(x) for x in k)))
    if not ks or min(ks) < 1:
        raise ConfigError(f"k must hold positive integers, got {tuple(k)!r}")
    eval_settings = EvalSettings(ks=ks, pools=resolve_pools(pool, protocol), n_bootstrap=n_bootstrap, seed=seed)
    if n_bootstrap < 0:
        raise ConfigError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    names = check_request(names, split_settings, eval_settings) if names or not objects else []
    data, split = prepare_split(dataset, split_settings, reporter)
    runs = evaluate_models(
        split, names, eval_settings, encoder=encoder, reporter=reporter, min_history=split_settings.min_history
    )
    runs += [_run_object(key, model, split, eval_settings) for key, model in objects.items()]
    return result_document(data, split, split_settings, runs, encoder=encoder)


def _model_key(model: Recommender, entries: Sequence[object]) -> str:
    """A result key for a model object: its name, numbered when the same name comes twice."""
    same = [m for m in entries if isinstance(m, Recommender) and m.name == model.name]
    return model.name if len(same) == 1 else f"{model.name}-{same.index(model) + 1}"


def _run_object(key: str, model: Recommender, split: Any, settings: Any) -> Any:

    start = time.perf_counter()
    model.fit(split.train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    metrics = evaluate_model(model, split, settings)
    for pool_metrics in metrics.values():
        pool_metrics.setdefault("per_category", {})
    return ModelRun(key, model, metrics, fit_seconds, time.perf_counter() - start)
