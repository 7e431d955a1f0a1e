"""The names users type (`--models tfidf,zero-shot`) and the recommenders they build: an explicit table.

Also the reverse: `load_model(folder)` reads the model name in a saved folder's config.json and hands the
folder to the class that wrote it (`SAVED_MODEL_CLASSES`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from zsrec.data.splits import LEAVE_CATEGORY_OUT, EvalSplit
from zsrec.errors import ConfigError
from zsrec.models.als import AlsRecommender
from zsrec.models.base import Recommender
from zsrec.models.baselines import (
    PopularityOracle,
    PopularityRecommender,
    RandomRecommender,
    TfidfRecommender,
)
from zsrec.models.cross_encoder import CrossEncoderRecommender, CrossEncoderSettings
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.ensemble import DEFAULT_MEMBERS, EnsembleRecommender, EnsembleSettings
from zsrec.models.finetuned import TINY_RANDOM, FinetunedTwoTower, two_tower_model
from zsrec.models.heads import HeadSettings, MlpHeadRecommender, SeedLinearRecommender, TwoTowerRecommender
from zsrec.models.launch import LaunchRanker, LaunchSettings
from zsrec.models.tuned import TunedZeroShot, TuningSettings
from zsrec.models.zero_shot import PRESETS, ZeroShotRecommender, ZeroShotSettings, preset
from zsrec.training.adversarial import AdversarialSettings
from zsrec.training.contrastive import ContrastiveSettings
from zsrec.training.cross_encoder import CrossEncoderTrainingSettings
from zsrec.training.heads import HeadTrainingSettings


@dataclass(frozen=True)
class ModelContext:
    """What building a model may need besides its name."""

    embeddings: EmbeddingSource | None = None  # shared text embeddings (one encoder load per run)
    split: EvalSplit | None = None  # only the leak reference `popularity-oracle` reads the test targets
    encoder: str = "minilm"  # encoder spec for the text models
    members: tuple[str, ...] = ()  # ensemble members (`--members a,b,c`); empty = the ensemble's default set
    # adversarial training of the language-model trainers (`--adversarial`); None = their defaults (none)
    adversarial: AdversarialSettings | None = None
    # field values overriding a language-model trainer's training settings (`--training`, TRAINING_SETTINGS)
    training: dict[str, Any] | None = None
    # The category level at which categories are new (an evaluation's held-out level, `new_category_level`):
    # `zero-shot` and `ensemble` (also as members, or as the cross-encoder's base) tune on validation categories
    # of their training data held out at this level, the same kind of task they are judged on. None = their own
    # default (the top level if it has >= 4). The trainers keep their own `level` (`--training level=N`).
    validation_level: int | None = None


def new_category_level(split: EvalSplit | None) -> int | None:
    """The level whose categories a leave-category-out split holds out; None for any other split (or none)."""
    return split.level if split is not None and split.protocol == LEAVE_CATEGORY_OUT else None


def _oracle(ctx: ModelContext) -> Recommender:
    if ctx.split is None:
        raise ConfigError("popularity-oracle only exists inside an evaluation (it reads the test targets)")
    n_items = ctx.split.train.n_items
    counts = np.zeros(n_items)
    for t in ctx.split.targets:
        counts[t] += 1
    return PopularityOracle(test_counts=counts)


def _zero_shot_preset(name: str) -> Callable[[ModelContext], Recommender]:
    def build(ctx: ModelContext) -> Recommender:
        model = ZeroShotRecommender(preset(name, ZeroShotSettings(encoder=ctx.encoder)), embeddings=ctx.embeddings)
        model.name = name
        return model

    return build


def _head(cls: type[Recommender]) -> Callable[[ModelContext], Recommender]:
    def build(ctx: ModelContext) -> Recommender:
        overrides = dict(ctx.training or {})
        if ctx.adversarial is not None:
            overrides["adversarial"] = ctx.adversarial
        return cls(
            HeadSettings(encoder=ctx.encoder, training=HeadTrainingSettings(**overrides)), embeddings=ctx.embeddings
        )

    return build


def _fake_encoder(ctx: ModelContext) -> bool:
    """Whether this run uses the fake hashing encoder (tests, smoke runs): language-model trainers then train a
    tiny random BERT instead of MiniLM."""
    return ctx.encoder.startswith("hashing") or (
        ctx.embeddings is not None and ctx.embeddings.encoder.model_id.startswith("hashing")
    )


def _cross_encoder(ctx: ModelContext) -> Recommender:
    settings = CrossEncoderSettings(encoder=ctx.encoder, base_validation_level=ctx.validation_level)
    overrides = dict(ctx.training or {})
    if ctx.adversarial is not None:
        overrides["adversarial"] = ctx.adversarial
    if overrides:
        settings = replace(settings, training=replace(settings.training, **overrides))
    if _fake_encoder(ctx):  # a run on the fake encoder (tests, smoke runs) gets the tiny random backbone, not MiniLM
        settings = replace(settings, backbone="tiny-random", training=replace(settings.training, threads=1))
    return CrossEncoderRecommender(settings, embeddings=ctx.embeddings)


def _finetuned(mode: str) -> Callable[[ModelContext], Recommender]:
    def build(ctx: ModelContext) -> Recommender:
        encoder = TINY_RANDOM if _fake_encoder(ctx) else ctx.encoder  # a fake-encoder run fine-tunes a tiny random BERT
        return two_tower_model(mode, encoder=encoder, adversarial=ctx.adversarial, training=ctx.training)

    return build


def _ensemble(ctx: ModelContext) -> Recommender:
    settings = EnsembleSettings(members=ctx.members or DEFAULT_MEMBERS, encoder=ctx.encoder, level=ctx.validation_level)
    return EnsembleRecommender(settings, embeddings=ctx.embeddings)


BUILDERS: dict[str, Callable[[ModelContext], Recommender]] = {
    "random": lambda ctx: RandomRecommender(),
    "popularity": lambda ctx: PopularityRecommender(),
    "popularity-oracle": _oracle,
    "tfidf": lambda ctx: TfidfRecommender(),
    "als": lambda ctx: AlsRecommender(),
    "zero-shot": lambda ctx: TunedZeroShot(
        TuningSettings(level=ctx.validation_level), encoder=ctx.encoder, embeddings=ctx.embeddings
    ),
    **{name: _zero_shot_preset(name) for name in PRESETS},
    "launch-ranker": lambda ctx: LaunchRanker(
        LaunchSettings(encoder=ctx.encoder, category_level=ctx.validation_level), embeddings=ctx.embeddings
    ),
    # trained on warm-category interactions over frozen text embeddings (issue 4, first part)
    "seed-linear": _head(SeedLinearRecommender),
    "two-tower-head": _head(TwoTowerRecommender),
    "mlp-head": _head(MlpHeadRecommender),
    # fusion of members with weights tuned on validation categories (issue 5); default members: DEFAULT_MEMBERS
    "ensemble": _ensemble,
    # a classifier re-ranking zero-shot's top candidates (issue 4, third part)
    "cross-encoder": _cross_encoder,
    # the text encoder itself fine-tuned as a two-tower, LoRA adapters or every weight (issue 4, second part)
    "two-tower-lora": _finetuned("lora"),
    "two-tower-full": _finetuned("full"),
}

#: the training settings of each language-model trainer: `zsrec train --training` sets their fields, and
#: `--adversarial` their `adversarial` field
TRAINING_SETTINGS: dict[str, type] = {
    "seed-linear": HeadTrainingSettings,
    "two-tower-head": HeadTrainingSettings,
    "mlp-head": HeadTrainingSettings,
    "two-tower-lora": ContrastiveSettings,
    "two-tower-full": ContrastiveSettings,
    "cross-encoder": CrossEncoderTrainingSettings,
}

#: the heads over frozen embeddings (trained by `zsrec.training.heads`)
HEAD_MODELS = tuple(name for name, cls in TRAINING_SETTINGS.items() if cls is HeadTrainingSettings)

#: models that read item text (they need an encoder and show an encode step)
TEXT_MODELS = frozenset(
    {"zero-shot", *PRESETS, "launch-ranker", "seed-linear", "two-tower-head", "mlp-head", "cross-encoder", "ensemble"}
    | {"two-tower-lora", "two-tower-full"}
)


def model_names() -> list[str]:
    return list(BUILDERS)


def parse_model_names(text: str) -> list[str]:
    """Split "a,b" into known model names; an unknown name raises ConfigError listing the known ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--models is empty; known models: " + ", ".join(BUILDERS))
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise ConfigError(f"unknown model {unknown[0]!r}; known models: {', '.join(BUILDERS)}")
    return list(dict.fromkeys(names))


def build_model(name: str, ctx: ModelContext | None = None) -> Recommender:
    if name not in BUILDERS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(BUILDERS)}")
    return BUILDERS[name](ctx or ModelContext())


#: every class whose saved folder `load_model` can read (each says which config.json names it loads)
SAVED_MODEL_CLASSES: list[type[Recommender]] = [
    FinetunedTwoTower,  # two-tower-lora and two-tower-full
    RandomRecommender,
    PopularityRecommender,
    TfidfRecommender,
    AlsRecommender,
    TunedZeroShot,
    ZeroShotRecommender,
    LaunchRanker,
    SeedLinearRecommender,
    TwoTowerRecommender,
    MlpHeadRecommender,
    CrossEncoderRecommender,
    EnsembleRecommender,
]


def load_model(directory: str | Path) -> Recommender:
    """Load a fitted model from a folder written by its `save` (dispatch on `model` in its config.json)."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{directory} is not a saved model folder (no config.json)")
    try:
        name = json.loads(config_path.read_text()).get("model")
    except (json.JSONDecodeError, AttributeError) as err:
        raise ConfigError(f"{config_path} is not a model config: {err}") from err
    for cls in SAVED_MODEL_CLASSES:
        if name in cls.loadable_names():
            return cls.load(directory)
    raise ConfigError(f"{directory} holds a {name!r} model, which this zsrec version cannot load")
