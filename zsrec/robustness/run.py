"""`run_robustness`: dataset spec and model names in, one JSON-ready document out (what `zsrec robustness` writes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from zsrec.data.dataset import Dataset
from zsrec.data.splits import LEAVE_CATEGORY_OUT, EvalSplit, SplitSettings
from zsrec.errors import ConfigError
from zsrec.evaluation.run import RunOptions, model_entries, prepare_split, provenance
from zsrec.models.base import ReadsItemText, Recommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import ModelContext, build_model, new_category_level, text_models
from zsrec.reporting import Reporter, SilentReporter, json_ready
from zsrec.robustness.attacks import choose_stuffed_items
from zsrec.robustness.evaluate import RobustnessSettings, attack_examples, robustness_of, settings_dict
from zsrec.training.artifacts import check_evaluable, dataset_fingerprint, load_model_folder


def run_robustness(
    dataset: str | Dataset,
    models: Sequence[str],
    split_settings: SplitSettings | None = None,
    settings: RobustnessSettings | None = None,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """Split `dataset`, then for each model measure clean and attacked NDCG and stuffing success.

    `options` are an evaluation run's encoder, shared embeddings, reporter and command line (`RunOptions`).

    A model is a registered name (fitted here on the split's training data, and refitted on each attacked
    catalog) or a folder made by `zsrec train` on the same split (loaded, checked as `evaluate` checks it, and
    asked to re-read the attacked text through `with_item_text`: nothing is retrained).

    Returns:
        `{"dataset", "protocol", "settings", "stuffed_items", "examples", "results": {model: robustness_of(...)},
        "models": {model: {"seconds"}}, "encoder", "zsrec_version", "created", "command"}`.
    """
    split_settings = split_settings or SplitSettings()
    settings = settings or RobustnessSettings()
    options = options or RunOptions()
    encoder, embeddings, command = options.encoder, options.embeddings, options.command
    reporter = options.reporter or SilentReporter()
    if split_settings.protocol != LEAVE_CATEGORY_OUT:
        raise ConfigError(f"robustness needs --protocol {LEAVE_CATEGORY_OUT} (it perturbs the new items' text)")
    names, folders = model_entries(models)
    if "popularity-oracle" in names:
        raise ConfigError("popularity-oracle reads the test targets, not text; leave it out of a robustness run")
    data, split = prepare_split(dataset, split_settings, reporter)
    saved = load_saved_models(folders, split, split_settings.min_history)
    fitters = model_fitters(names, saved, split, encoder=encoder, embeddings=embeddings, reporter=reporter)
    results, timings = {}, {}
    for name, fit in fitters.items():
        reporter.message(f"robustness of {name}")
        start = time.perf_counter()
        results[name] = robustness_of(
            fit, split, settings, progress=lambda text, n=name: reporter.message(f"{n}: {text}")
        )
        timings[name] = {"seconds": time.perf_counter() - start}
    return result_document(data, split, split_settings, settings, results, timings, encoder=encoder, command=command)


def load_saved_models(folders: Sequence[str], split: EvalSplit, min_history: int) -> dict[str, Recommender]:
    """Every model folder, loaded and checked before any model is fitted: trained on this split, and able
    to re-read tampered item text (`with_item_text`)."""
    saved: dict[str, Recommender] = {}
    for name in folders:
        model, record = load_model_folder(name)
        check_evaluable(record, split.train, split, name, min_history=min_history)
        if not isinstance(model, ReadsItemText):
            raise ConfigError(
                f"{name} holds a saved {model.name!r}, which cannot re-read tampered item text; give the model "
                "name instead (it is then refitted on each attacked catalog)"
            )
        saved[name] = model
    return saved


def model_fitters(
    names: Sequence[str],
    saved: dict[str, Recommender],
    split: EvalSplit,
    *,
    encoder: str,
    embeddings: EmbeddingSource | None,
    reporter: Reporter,
) -> dict[str, Callable[[Dataset], Recommender]]:
    """Per model, `fit(train)`: a registered name is built and fitted on each (attacked) catalog; a saved
    folder was fitted on this split's training data when it was trained, and attacks make it re-read text."""
    if embeddings is None and any(n in text_models() for n in names):
        embeddings = EmbeddingSource(encoder, show_progress=reporter.progress_bars)
    ctx = ModelContext(embeddings=embeddings, encoder=encoder, validation_level=new_category_level(split))

    def fitter(name: str) -> Callable[[Dataset], Recommender]:
        if name in saved:
            return lambda train: saved[name]
        return lambda train: build_model(name, ctx).fit(train)

    return {name: fitter(name) for name in names}


def result_document(
    data: Dataset,
    split: EvalSplit,
    split_settings: SplitSettings,
    settings: RobustnessSettings,
    results: dict[str, Any],
    timings: dict[str, Any],
    *,
    encoder: str,
    command: Sequence[str],
) -> dict[str, Any]:
    """The JSON-ready record of a robustness run."""
    stuffed = choose_stuffed_items(split.new_items, settings.attack)
    doc = {
        "dataset": data.name,
        "dataset_fingerprint": dataset_fingerprint(data),
        "protocol": {
            "name": split.protocol,
            "level": split.level,
            "heldout_categories": list(split.heldout_categories),
            "n_test_users": len(split.test_users),
            "n_new_items": len(split.new_items),
            "min_history": split_settings.min_history,
            "seed": split_settings.seed,
        },
        "settings": settings_dict(settings),
        "stuffed_items": split.train.items["item_id"].iloc[stuffed].tolist(),
        "examples": attack_examples(split, settings.attack, settings.attacks),
        "results": results,
        "models": timings,
        "encoder": encoder,
        **provenance(command),
    }
    return json_ready(doc)
