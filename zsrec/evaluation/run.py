"""`run_evaluation`: dataset spec in, one JSON-ready result document out (what `zsrec evaluate` writes).

The steps are public too (`check_request`, `prepare_split`, `evaluate_models`, `result_document`) so that a
caller that needs the fitted models afterwards, such as the demo, can run them one by one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from zsrec._version import __version__
from zsrec.data.dataset import Dataset
from zsrec.data.loaders import dataset_of
from zsrec.data.splits import LAUNCH, LEAVE_CATEGORY_OUT, EvalSplit, SplitSettings, make_split
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError, split_list
from zsrec.evaluation.evaluate import EvalSettings, evaluate_model, launch_metrics
from zsrec.evaluation.metrics import paired_bootstrap_ci
from zsrec.models.base import Recommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import ModelContext, build_model, new_category_level, parse_model_names, text_models
from zsrec.reporting import Reporter, SilentReporter, json_ready
from zsrec.training.artifacts import check_evaluable, dataset_fingerprint, is_model_folder, load_model_folder

POOL_CHOICES = ("new", "all", "both")


@dataclass
class ModelRun:
    """One model's outcome: the fitted model, its metrics per pool, and how long it took."""

    name: str
    model: Recommender
    metrics: dict[str, dict[str, Any]]  # {pool: evaluate_model's metrics}
    fit_seconds: float
    score_seconds: float
    per_user: np.ndarray | None = None  # launch protocol: per-user NDCG at the smallest k, for paired CIs


@dataclass(frozen=True)
class RunOptions:
    """What every evaluation run takes besides its data and settings (`run_evaluation`'s keyword arguments)."""

    encoder: str = "minilm"  # the encoder spec text models record in their config (and load, without embeddings)
    embeddings: EmbeddingSource | None = None  # the source text models share; default one for `encoder`
    reporter: Reporter | None = None  # where progress goes; None = silent
    command: Sequence[str] = ()  # the command line recorded in the result document

    def evaluate(
        self,
        split: EvalSplit,
        names: Sequence[str],
        settings: EvalSettings,
        *,
        min_history: int,
        revealed: pd.DataFrame | None = None,
    ) -> list[ModelRun]:
        """`evaluate_models` with these options."""
        return evaluate_models(
            split,
            names,
            settings,
            encoder=self.encoder,
            embeddings=self.embeddings,
            reporter=self.reporter,
            min_history=min_history,
            revealed=revealed,
        )

    def document(
        self, data: Dataset, split: EvalSplit, split_settings: SplitSettings, runs: Sequence[ModelRun]
    ) -> dict[str, Any]:
        """`result_document` with these options' encoder and command."""
        return result_document(data, split, split_settings, runs, encoder=self.encoder, command=self.command)

    def evaluate_split(
        self,
        data: Dataset,
        split: EvalSplit,
        split_settings: SplitSettings,
        names: Sequence[str],
        settings: EvalSettings,
    ) -> dict[str, Any]:
        """Fit and evaluate each named model on a prepared split; its result document."""
        runs = self.evaluate(split, names, settings, min_history=split_settings.min_history)
        return self.document(data, split, split_settings, runs)


def resolve_pools(pool: str | None, protocol: str) -> tuple[str, ...]:
    """The candidate pools of a `--pool` value: "new", "all" or "both"; None = the protocol's natural one.

    Leave-one-out has no new items, so only "all" makes sense there.
    """
    if pool is not None and pool not in POOL_CHOICES:
        raise ConfigError(f"pool must be one of {', '.join(POOL_CHOICES)}, got {pool!r}")
    if protocol == LAUNCH:
        if pool is not None:
            raise ConfigError(f"the {LAUNCH} protocol ranks the whole catalog against old and new targets; drop --pool")
        return ("launch",)
    if protocol != LEAVE_CATEGORY_OUT:
        if pool not in (None, "all"):
            raise ConfigError(
                f"pool {pool!r} needs new items, which only {LEAVE_CATEGORY_OUT} has; use pool 'all' with {protocol}"
            )
        return ("all",)
    return {"new": ("new",), "all": ("all",), "both": ("new", "all"), None: ("new",)}[pool]


#: no catalog zsrec can hold in memory has more items
MAX_K = 100_000_000


def parse_ks(text: str) -> tuple[int, ...]:
    """Parse "10,50" into (10, 50); anything but positive integers raises ConfigError naming the value."""
    parts = split_list(text, "--k")
    try:
        ks = tuple(int(p) for p in parts)
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1:
        raise ConfigError(f"k must be a comma-separated list of positive integers, got {text!r}")
    if max(ks) > MAX_K:  # refused before the data is read; `check_ks` compares k with the catalog after
        raise ConfigError(f"k must be at most {MAX_K:,} (and the catalog's size), got {max(ks):,}")
    return tuple(sorted(set(ks)))


#: cut-offs up to this are accepted on any catalog (the defaults must work on a small shop): a metric at a k
#: beyond the candidates equals the metric at the number of candidates
K_ALWAYS_ACCEPTED = 1_000


def check_ks(ks: Sequence[int], n_items: int) -> None:
    """Refuse a cut-off beyond both the catalog and `K_ALWAYS_ACCEPTED`, before anything of size k exists."""
    limit = max(n_items, K_ALWAYS_ACCEPTED)
    if max(ks) > limit:
        raise ConfigError(f"k={max(ks):,} exceeds the catalog's {n_items:,} items; give a k of at most {limit:,}")


def model_entries(models: Sequence[str]) -> tuple[list[str], list[str]]:
    """`--models` entries as (every entry de-duplicated, in order; the ones that are model folders).

    Registered names are checked (ConfigError for an unknown one, or for a path that holds no model)."""
    entries = [m.strip() for m in models if m.strip()]
    folders = [m for m in entries if is_model_folder(m)]
    registered = [m for m in entries if m not in folders]
    for entry in registered:
        if "/" in entry or entry.startswith("."):
            raise ConfigError(f"{entry!r} is neither a known model name nor a model folder (no config.json)")
    names = parse_model_names(",".join(registered)) if registered or not folders else []  # none at all: error
    return [m for m in dict.fromkeys(entries) if m in folders or m in names], folders


def check_request(models: Sequence[str], split_settings: SplitSettings, eval_settings: EvalSettings) -> list[str]:
    """Check what settings cannot check alone, before any work; returns the model names de-duplicated."""
    names, _ = model_entries(models)
    if eval_settings.n_bootstrap < 0:
        raise ConfigError(f"n_bootstrap must be >= 0, got {eval_settings.n_bootstrap}")
    if eval_settings.reference is not None and eval_settings.reference not in names:
        raise ConfigError(f"--reference {eval_settings.reference!r} is not among the models: {', '.join(names)}")
    if split_settings.protocol != LEAVE_CATEGORY_OUT and "new" in eval_settings.pools:
        raise ConfigError(f"pool 'new' needs the {LEAVE_CATEGORY_OUT} protocol, got {split_settings.protocol}")
    return names


def prepare_split(
    dataset: str | Dataset, settings: SplitSettings, reporter: Reporter | None = None
) -> tuple[Dataset, EvalSplit]:
    """Load the dataset (reporting its cleaning warnings) and build the split; no test user is an error."""
    reporter = reporter or SilentReporter()
    data = dataset_of(dataset, reporter)
    split = make_split(data, settings)
    if len(split.test_users) == 0:
        raise ConfigError(
            f"the split has no test users: nobody interacted with the held-out items and has at least "
            f"min_history={settings.min_history} other interactions; hold out other categories or lower "
            "min_history"
        )
    reporter.message(describe_split(split))
    return data, split


def describe_split(split: EvalSplit) -> str:
    if split.protocol == LEAVE_CATEGORY_OUT:
        cats = "; ".join(split.heldout_categories)
        return (
            f"{split.protocol} at level {split.level}: held out {cats} "
            f"({len(split.new_items):,} new items, {len(split.test_users):,} test users)"
        )
    return f"{split.protocol}: {len(split.test_users):,} test users"


def evaluate_models(
    split: EvalSplit,
    names: Sequence[str],
    settings: EvalSettings | None = None,
    *,
    encoder: str = "minilm",
    embeddings: EmbeddingSource | None = None,
    reporter: Reporter | None = None,
    min_history: int = 3,
    revealed: pd.DataFrame | None = None,
) -> list[ModelRun]:
    """Fit each named model on `split.train` and evaluate it; text models share one `EmbeddingSource`.

    Args:
        names: registered model names (fitted here on `split.train`) or folders written by `zsrec train`
            (loaded, and refused where they learned from this split's test interactions).
        encoder: the encoder spec text models record in their config (and load, without `embeddings`).
        embeddings: the source text models share; default one for `encoder`, made when first needed.
        revealed: interactions revealed after training (the warm-up protocol, `zsrec.data.reveal`): each model
            folds them in with `partial_fit` before it is scored; that time counts as fitting.
    """
    settings = settings or EvalSettings()
    reporter = reporter or SilentReporter()
    check_ks(settings.ks, split.train.n_items)
    if embeddings is None and any(n in text_models() for n in names):
        embeddings = EmbeddingSource(encoder, show_progress=reporter.progress_bars)
    ctx = ModelContext(embeddings=embeddings, split=split, encoder=encoder, validation_level=new_category_level(split))
    runs = []
    saved = {}  # model folders: loaded and checked before any model is fitted
    for name in names:
        if is_model_folder(name):
            model, record = load_model_folder(name)
            check_evaluable(record, split.train, split, name, min_history=min_history)
            saved[name] = model
    for name in names:
        if name in saved:
            model = saved[name]
            reporter.message(f"loaded {name} ({model.name})")
            fit_seconds = 0.0
        else:
            model = build_model(name, ctx)
            reporter.message(f"fitting {name}")
            start = time.perf_counter()
            model.fit(split.train)
            fit_seconds = time.perf_counter() - start
        if revealed is not None and len(revealed):
            start = time.perf_counter()
            model.partial_fit(revealed)
            fit_seconds += time.perf_counter() - start
        runs.append(score_model(name, model, split, settings, fit_seconds=fit_seconds, reporter=reporter))
    if split.protocol == LAUNCH:
        add_paired_cis(runs, settings)
    return runs


def add_paired_cis(runs: Sequence[ModelRun], settings: EvalSettings) -> None:
    """Launch protocol: each model's NDCG gain over the reference model, per user, with its paired bootstrap
    95% CI (`results[model]["launch"]["paired"]`). The reference: `settings.reference`, else als where run,
    else the first model."""
    names = [run.name for run in runs]
    reference = settings.reference or ("als" if "als" in names else names[0])
    if reference not in names:
        raise ConfigError(f"the reference model {reference!r} is not among the models evaluated: {names}")
    base = next(run for run in runs if run.name == reference)
    k = min(settings.ks)
    for run in runs:
        if run.per_user is None or base.per_user is None:
            continue
        diff = run.per_user - base.per_user
        lo, hi = paired_bootstrap_ci(diff, n_resamples=max(settings.n_bootstrap, 1), seed=settings.seed)
        run.metrics["launch"]["paired"] = {
            "reference": reference,
            f"ndcg@{k}_gain": float(diff.mean()),
            f"ndcg@{k}_gain_ci": [lo, hi],
            f"ndcg@{k}_ratio": float(run.per_user.mean() / base.per_user.mean()) if base.per_user.mean() > 0 else None,
        }


def score_model(
    name: str,
    model: Recommender,
    split: EvalSplit,
    settings: EvalSettings,
    *,
    fit_seconds: float,
    reporter: Reporter | None = None,
) -> ModelRun:
    """Evaluate a fitted model on `split` (with a progress bar) and time it."""
    reporter = reporter or SilentReporter()
    total = len(split.test_users) * len(settings.pools)
    per_user = None
    with reporter.progress(f"scoring {name}", total) as advance:
        start = time.perf_counter()
        if split.protocol == LAUNCH:
            launch, per_user = launch_metrics(model, split, settings, progress=advance)
            metrics = {"launch": launch}
        else:
            metrics = evaluate_model(model, split, settings, progress=advance)
        score_seconds = time.perf_counter() - start
    for pool_metrics in metrics.values():
        pool_metrics.setdefault("per_category", {})
    reporter.message(f"{name}: fitted in {fit_seconds:.1f}s, scored in {score_seconds:.1f}s")
    return ModelRun(name, model, metrics, fit_seconds, score_seconds, per_user)


def result_document(
    data: Dataset,
    split: EvalSplit,
    split_settings: SplitSettings,
    runs: Sequence[ModelRun],
    *,
    encoder: str,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON-ready record of an evaluation (undefined metrics are None, so strict JSON can hold them)."""
    validation = split.validation.heldout_categories if split.validation is not None else ()
    doc = {
        "dataset": data.name,
        "dataset_fingerprint": dataset_fingerprint(data),
        "protocol": {
            "name": split.protocol,
            "level": split.level,
            "heldout_categories": list(split.heldout_categories),
            "validation_categories": list(validation),
            "n_test_users": len(split.test_users),
            "n_new_items": len(split.new_items),
            "min_history": split_settings.min_history,
            "seed": split_settings.seed,
            **({"test_fraction": split_settings.test_fraction} if split.protocol == LAUNCH else {}),
        },
        "results": {run.name: run.metrics for run in runs},
        "models": {
            run.name: {
                "config": run.model.get_config(),
                "fit_seconds": run.fit_seconds,
                "score_seconds": run.score_seconds,
            }
            for run in runs
        },
        "encoder": encoder,
        "item_text_template": ItemTextTemplate().to_dict(),
        **provenance(command),
    }
    return json_ready(doc)


def provenance(command: Sequence[str]) -> dict[str, Any]:
    """The fields every result document ends with: zsrec version, when it was made, and the command line."""
    return {
        "zsrec_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(command),
    }


def run_evaluation(
    dataset: str | Dataset,
    models: Sequence[str],
    split_settings: SplitSettings | None = None,
    eval_settings: EvalSettings | None = None,
    *,
    encoder: str = "minilm",
    embeddings: EmbeddingSource | None = None,
    reporter: Reporter | None = None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Load `dataset`, split it, fit and evaluate each model on the split; return the result document.

    Every setting is checked before the dataset is read, and an unusable split (unknown held-out category,
    no test user) is refused before any model is fitted.

    Returns:
        `{"dataset", "protocol": {...}, "results": {model: {pool: metrics}}, "models": {model: {"config",
        "fit_seconds", "score_seconds"}}, "encoder", "item_text_template", "zsrec_version", "created",
        "command"}`; see `result_document`.
    """
    split_settings = split_settings or SplitSettings()
    eval_settings = eval_settings or EvalSettings()
    names = check_request(models, split_settings, eval_settings)
    data, split = prepare_split(dataset, split_settings, reporter)
    options = RunOptions(encoder, embeddings, reporter, command)
    return options.evaluate_split(data, split, split_settings, names, eval_settings)
