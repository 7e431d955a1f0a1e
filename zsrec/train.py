"""`train_model`: dataset in, a fitted model and its training record out, optionally saved as a model folder
(what `zsrec train` does).

Every setting is checked before the dataset is read; the folder appears only once complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from zsrec.config_file import config_yaml
from zsrec.data.dataset import Dataset
from zsrec.data.loaders import dataset_of
from zsrec.data.splits import EvalSplit, SplitSettings, make_split
from zsrec.encoders import load_encoder_lazily
from zsrec.errors import ConfigError
from zsrec.evaluation.run import Reporter, SilentReporter, describe_split
from zsrec.io import atomic_write_text, check_free_space, check_out_writable
from zsrec.models.base import Recommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import ModelContext, build_model, new_category_level, text_models, training_settings
from zsrec.models.zero_shot import ZeroShotSettings
from zsrec.service.bundle import ServingSettings, write_service_folder
from zsrec.training.adversarial import AdversarialSettings, parse_adversarial
from zsrec.training.artifacts import TrainingRecord, fit_and_record, save_model_folder
from zsrec.training.options import parse_fields

#: the resolved options of `zsrec train` inside the model folder
RUN_CONFIG_FILE = "run.yaml"
#: models that tune on validation categories, and so take `validation_level`
VALIDATING_MODELS = ("zero-shot", "ensemble")


def parse_training_options(name: str, adversarial: str, training: str) -> tuple[AdversarialSettings | None, Any]:
    """The `--adversarial` and `--training` option strings of `name` as (AdversarialSettings, field values);
    an option given for a model without a trainer raises ConfigError naming the option."""

    trainers = training_settings()
    for option, given in (("--adversarial", adversarial), ("--training", training)):
        if given.strip() and name not in trainers:
            raise ConfigError(f"{option} applies to {', '.join(sorted(trainers))}, not {name!r}")
    attack = parse_adversarial(adversarial) if adversarial.strip() else None
    overrides = parse_fields(trainers[name], training, "--training") if training.strip() else None
    return attack, overrides


def check_train_request(
    name: str, *, members: Sequence[str] = (), validation_level: int | None = None, out: str | Path | None = None
) -> None:
    """Refuse what cannot be trained, before any work: the leak reference, members of a non-ensemble, a
    validation level for a model that does not validate, an --out that is a file or a non-empty folder."""
    if name == "popularity-oracle":
        raise ConfigError("popularity-oracle only exists inside an evaluation (it reads the test targets)")
    if members and name != "ensemble":
        raise ConfigError(f"--members only applies to --model ensemble, not {name!r}")
    if validation_level is not None and name not in VALIDATING_MODELS:
        raise ConfigError(f"--validation-level applies to zero-shot and ensemble, not {name!r}")
    if validation_level is not None and validation_level < 1:
        raise ConfigError(f"--validation-level must be >= 1, got {validation_level}")
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; give a folder for the model")
        if out.is_dir() and any(out.iterdir()):
            raise ConfigError(f"--out {out} is not empty; choose a new folder or pass --overwrite")


def train_model(
    dataset: str | os.PathLike[str] | Dataset,
    name: str,
    *,
    out: str | Path | None = None,
    split_settings: SplitSettings | None = None,
    members: Sequence[str] = (),
    encoder: str = "minilm",
    adversarial: AdversarialSettings | None = None,
    training: dict[str, Any] | None = None,
    validation_level: int | None = None,
    overwrite: bool = False,
    embeddings: EmbeddingSource | None = None,
    reporter: Reporter | None = None,
    command: Sequence[str] = (),
    run_config: dict[str, Any] | None = None,
) -> tuple[Recommender, TrainingRecord]:
    """Fit the registered model `name` and, with `out`, write it as a model folder (all or nothing).

    Args:
        dataset: a Dataset or a spec (a folder, `amazon-lcrec:PATH`, `completejourney`).
        split_settings: None trains on every interaction (for serving); a split keeps its held-out test
            categories out of training, so that `zsrec evaluate` with the same split accepts the folder.
        members: ensemble members (only for "ensemble"); empty = its default set.
        adversarial, training: the model trainer's AdversarialSettings and field values (see `training_settings()`).
        validation_level: the level at which zero-shot and ensemble validate; None = the split's level under
            leave-category-out, else their own default.
        embeddings: the text embeddings to share; default: one for `encoder` when the model reads text.
        overwrite: replace a non-empty `out`.
        run_config: the command's resolved options, written into the folder as `run.yaml` (what
            `zsrec train --config` reads), so that the model can be trained again from its folder.

    Returns:
        The fitted model and its record (what `training.json` holds). Text models' folders also carry the
        catalog, vectors and histories that `zsrec serve` reads.
    """

    reporter = reporter or SilentReporter()
    check_train_request(name, members=members, validation_level=validation_level, out=None if overwrite else out)
    if out is not None:  # before any heavy step: a read-only or full disk must not wait for the training
        check_out_writable(out, folder=True)
        check_free_space(out, MIN_FREE_BYTES)
    if embeddings is None:
        embeddings = text_embeddings([name, *members], encoder, reporter)
    data = dataset_of(dataset, reporter)
    if out is not None:
        check_free_space(out, estimate_folder_bytes(data, name))
    split = None
    if split_settings is not None:
        split = make_split(data, split_settings)
        reporter.message(describe_split(split))
    context: dict[str, Any] = {
        "embeddings": embeddings,
        "encoder": encoder,
        "validation_level": new_category_level(split) if validation_level is None else validation_level,
    }
    for key, value in (("members", tuple(members)), ("adversarial", adversarial), ("training", training)):
        if value:
            context[key] = value
    recommender = build_model(name, ModelContext(**context))
    recommender.reporter = reporter
    reporter.message(f"training {name}")  # the model reports its epochs and bars through `reporter`
    record = fit_and_record(
        recommender, data, split, split_settings, encoder=encoder, members=tuple(members), command=tuple(command)
    )
    if out is not None:
        serving = service_writer(recommender, split, data, embeddings, encoder) if embeddings is not None else None
        save_model_folder(recommender, record, out, overwrite=overwrite, extra=folder_extras(serving, run_config))
    return recommender, record


#: free space any model folder needs; and what the weights of models that save a whole encoder take
MIN_FREE_BYTES = 16 * 2**20
ENCODER_WEIGHT_BYTES = 512 * 2**20
_SAVES_ENCODER = ("two-tower-full", "cross-encoder")


def estimate_folder_bytes(data: Dataset, name: str) -> int:
    """A generous size of the model folder `train` will write for `data`: per item its vectors (up to 1,024
    float32 dimensions, in the model and the service store) and text, per interaction its history and event
    rows, plus a whole encoder's weights for the models that save one."""
    text_bytes = sum(int(data.items[c].str.len().sum()) for c in ("title", "description") if c in data.items)
    per_item = 3 * 1024 * 4
    size = MIN_FREE_BYTES + data.n_items * per_item + 2 * text_bytes + 64 * len(data.interactions)
    return size + (ENCODER_WEIGHT_BYTES if name in _SAVES_ENCODER else 0)


def folder_extras(serving: Any, run_config: dict[str, Any] | None) -> Any:
    """One function adding the service's files and `run.yaml` to a model folder (None when neither)."""
    if serving is None and run_config is None:
        return None

    def write(folder: Path) -> None:
        if serving is not None:
            serving(folder)
        if run_config is not None:
            atomic_write_text(folder / RUN_CONFIG_FILE, config_yaml(run_config))

    return write


def text_embeddings(names: Sequence[str], encoder: str, reporter: Reporter) -> EmbeddingSource | None:
    """The EmbeddingSource text models share, its encoder checked now so that a bad encoder fails before the
    dataset is read (a packaged one loads later, and only if a text is not cached); None when no text model
    is asked for."""

    if not any(n in text_models() for n in names):
        return None
    with reporter.progress(f"loading encoder {encoder}", None):
        return EmbeddingSource(load_encoder_lazily(encoder), show_progress=reporter.progress_bars)


def service_writer(
    model: Recommender, split: EvalSplit | None, data: Dataset, embeddings: EmbeddingSource, encoder: str
) -> Any:
    """A function adding what `zsrec serve` reads (catalog, vectors, histories) to a model folder."""

    seen = split.train if split is not None else data
    settings = ServingSettings(encoder=encoder, model=model.name)  # users as the mean of their history vectors
    if isinstance(model.settings, ZeroShotSettings):  # follow its history aggregation where the service has it
        aggregation = "recency" if model.settings.aggregation == "recency" else "mean"
        settings = replace(settings, aggregation=aggregation, half_life=model.settings.half_life)

    def write(folder: Path) -> None:
        write_service_folder(seen, folder, embeddings, settings=settings)

    return write
