"""The names users type (`--models tfidf,zero-shot`) and the recommenders they build: one `ModelSpec` each.

Also the reverse: `load_model(folder)` reads the model name in a saved folder's config.json and hands the
folder to the class that wrote it (`ModelSpec.saved`). Models made of other registered models (`ensemble`,
`cross-encoder`) receive `build_model` and `load_model` from here rather than importing this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from zsrec.data.splits import CATEGORY_PROTOCOLS, EvalSplit
from zsrec.errors import ConfigError, split_list
from zsrec.models.als import AlsRecommender
from zsrec.models.base import HasMembers, ModelBuilder, Recommender
from zsrec.models.baselines import (
    PopularityOracle,
    PopularityRecommender,
    RandomRecommender,
    TfidfRecommender,
)
from zsrec.models.blend import BlendSettings, InterleaveRecommender, InterleaveSettings, LaunchBlend, SimulationSettings
from zsrec.models.bm25 import Bm25Recommender
from zsrec.models.cross_encoder import CrossEncoderRecommender, CrossEncoderSettings
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.ensemble import DEFAULT_MEMBERS, EnsembleRecommender, EnsembleSettings
from zsrec.models.finetuned import TINY_RANDOM, FinetunedTwoTower, two_tower_model
from zsrec.models.heads import HeadSettings, MlpHeadRecommender, SeedLinearRecommender, TwoTowerRecommender
from zsrec.models.launch import LaunchRanker, LaunchSettings
from zsrec.models.lightfm_model import LightFmRecommender
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
    # field values overriding a language-model trainer's training settings (`--training`, `ModelSpec.settings`)
    training: dict[str, Any] | None = None
    # The category level at which categories are new (an evaluation's held-out level, `new_category_level`):
    # `zero-shot` and `ensemble` (also as members, or as the cross-encoder's base) tune on validation categories
    # of their training data held out at this level, the same kind of task they are judged on. None = their own
    # default (the top level if it has >= 4). The trainers keep their own `level` (`--training level=N`).
    validation_level: int | None = None


def new_category_level(split: EvalSplit | None) -> int | None:
    """The level whose categories a leave-category-out or launch split holds out; None for any other split."""
    return split.level if split is not None and split.protocol in CATEGORY_PROTOCOLS else None


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


def _builder(embeddings: EmbeddingSource | None, encoder: str, validation_level: int | None) -> ModelBuilder:
    """Builds the registered models a composite model is made of (its members, its base) in its context."""
    context = ModelContext(embeddings=embeddings, encoder=encoder, validation_level=validation_level)
    # `build_model` is looked up when called, so that a test may replace it
    return lambda name: build_model(name, context)


def cross_encoder_model(
    settings: CrossEncoderSettings | None = None,
    *,
    embeddings: EmbeddingSource | None = None,
    base: Recommender | None = None,
) -> CrossEncoderRecommender:
    """A cross-encoder that builds its base model (`settings.base`) from this registry."""
    settings = settings or CrossEncoderSettings()
    build = _builder(embeddings, settings.encoder, settings.base_validation_level)
    return CrossEncoderRecommender(settings, embeddings=embeddings, base=base, build_model=build)


def ensemble_model(
    settings: EnsembleSettings | None = None, *, embeddings: EmbeddingSource | None = None
) -> EnsembleRecommender:
    """An ensemble that builds its members from this registry."""
    settings = settings or EnsembleSettings()
    build = _builder(embeddings, settings.encoder, settings.level)
    return EnsembleRecommender(settings, embeddings=embeddings, build_model=build)


def _cross_encoder(ctx: ModelContext) -> Recommender:
    settings = CrossEncoderSettings(encoder=ctx.encoder, base_validation_level=ctx.validation_level)
    overrides = dict(ctx.training or {})
    if ctx.adversarial is not None:
        overrides["adversarial"] = ctx.adversarial
    if overrides:
        settings = replace(settings, training=replace(settings.training, **overrides))
    if _fake_encoder(ctx):  # a run on the fake encoder (tests, smoke runs) gets the tiny random backbone, not MiniLM
        settings = replace(settings, backbone="tiny-random", training=replace(settings.training, threads=1))
    return cross_encoder_model(settings, embeddings=ctx.embeddings)


def _finetuned(mode: str) -> Callable[[ModelContext], Recommender]:
    def build(ctx: ModelContext) -> Recommender:
        encoder = TINY_RANDOM if _fake_encoder(ctx) else ctx.encoder  # a fake-encoder run fine-tunes a tiny random BERT
        return two_tower_model(mode, encoder=encoder, adversarial=ctx.adversarial, training=ctx.training)

    return build


def _ensemble(ctx: ModelContext) -> Recommender:
    settings = EnsembleSettings(members=ctx.members or DEFAULT_MEMBERS, encoder=ctx.encoder, level=ctx.validation_level)
    return ensemble_model(settings, embeddings=ctx.embeddings)


def _interleave(ctx: ModelContext) -> Recommender:
    simulation = SimulationSettings(level=ctx.validation_level)
    settings = InterleaveSettings(encoder=ctx.encoder, simulation=simulation)
    return InterleaveRecommender(settings, embeddings=ctx.embeddings)


def _launch_blend(ctx: ModelContext) -> Recommender:
    settings = BlendSettings(encoder=ctx.encoder, simulation=SimulationSettings(level=ctx.validation_level))
    return LaunchBlend(settings, embeddings=ctx.embeddings)


@dataclass(frozen=True)
class ModelSpec:
    """Everything zsrec knows about one registered model name."""

    name: str
    builder: Callable[[ModelContext], Recommender]  # an unfitted model for a run's context
    #: a language-model trainer's training settings class (`zsrec train --training` sets its fields,
    #: `--adversarial` its `adversarial` field); None for models without one
    settings: type | None = None
    reads_text: bool = False  # it reads item text: it needs an encoder and shows an encode step
    saved: type[Recommender] | None = None  # the class whose folders `load_model` hands this name to


def _specs(*specs: ModelSpec) -> dict[str, ModelSpec]:
    return {s.name: s for s in specs}


SPECS: dict[str, ModelSpec] = _specs(
    ModelSpec("random", lambda ctx: RandomRecommender(), saved=RandomRecommender),
    ModelSpec("popularity", lambda ctx: PopularityRecommender(), saved=PopularityRecommender),
    ModelSpec("popularity-oracle", _oracle),  # a leak reference that only lives inside an evaluation
    ModelSpec("tfidf", lambda ctx: TfidfRecommender(), saved=TfidfRecommender),
    ModelSpec("bm25", lambda ctx: Bm25Recommender(), saved=Bm25Recommender),
    ModelSpec("als", lambda ctx: AlsRecommender(), saved=AlsRecommender),
    ModelSpec("lightfm", lambda ctx: LightFmRecommender(), saved=LightFmRecommender),
    ModelSpec(
        "zero-shot",
        lambda ctx: TunedZeroShot(
            TuningSettings(level=ctx.validation_level), encoder=ctx.encoder, embeddings=ctx.embeddings
        ),
        reads_text=True,
        saved=TunedZeroShot,  # listed before the presets' class, which also reads old "zero-shot" folders
    ),
    *(ModelSpec(name, _zero_shot_preset(name), reads_text=True, saved=ZeroShotRecommender) for name in PRESETS),
    # the new-category model: tuned zero-shot plus collaborative bridges, then the first purchases
    ModelSpec(
        "launch-ranker",
        lambda ctx: LaunchRanker(
            LaunchSettings(encoder=ctx.encoder, level=ctx.validation_level), embeddings=ctx.embeddings
        ),
        reads_text=True,
        saved=LaunchRanker,
    ),
    # launch day in the whole catalog: ALS with zero-shot's new items at a fixed share of slots (chosen on a
    # simulated launch), and the per-user merge of ALS and launch-ranker learned on simulated launches
    ModelSpec("interleave", _interleave, reads_text=True, saved=InterleaveRecommender),
    ModelSpec("launch-blend", _launch_blend, reads_text=True, saved=LaunchBlend),
    # trained on warm-category interactions over frozen text embeddings
    *(
        ModelSpec(cls.name, _head(cls), HeadTrainingSettings, reads_text=True, saved=cls)
        for cls in (SeedLinearRecommender, TwoTowerRecommender, MlpHeadRecommender)
    ),
    # fusion of members with weights tuned on validation categories; default members: DEFAULT_MEMBERS
    ModelSpec("ensemble", _ensemble, reads_text=True, saved=EnsembleRecommender),
    # a classifier re-ranking zero-shot's top candidates
    ModelSpec(
        "cross-encoder", _cross_encoder, CrossEncoderTrainingSettings, reads_text=True, saved=CrossEncoderRecommender
    ),
    # the text encoder itself fine-tuned as a two-tower, LoRA adapters or every weight
    ModelSpec("two-tower-lora", _finetuned("lora"), ContrastiveSettings, reads_text=True, saved=FinetunedTwoTower),
    ModelSpec("two-tower-full", _finetuned("full"), ContrastiveSettings, reads_text=True, saved=FinetunedTwoTower),
)

#: the heads over frozen embeddings (trained by `zsrec.training.heads`)
HEAD_MODELS = tuple(name for name, s in SPECS.items() if s.settings is HeadTrainingSettings)


def spec(name: str) -> ModelSpec:
    """The spec of a registered model; ConfigError listing the known names for any other."""
    if name not in SPECS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(SPECS)}")
    return SPECS[name]


def model_names() -> list[str]:
    return list(SPECS)


def text_models() -> frozenset[str]:
    """Models that read item text (they need an encoder and show an encode step)."""
    return frozenset(name for name, s in SPECS.items() if s.reads_text)


def training_settings() -> dict[str, type]:
    """The training settings class of each language-model trainer, by model name."""
    return {name: s.settings for name, s in SPECS.items() if s.settings is not None}


def saved_model_classes() -> list[type[Recommender]]:
    """Every class whose saved folder `load_model` can read, in the order `load_model` asks them."""
    return list(dict.fromkeys(s.saved for s in SPECS.values() if s.saved is not None))


def parse_model_names(text: str) -> list[str]:
    """Split "a,b" into known model names; an unknown name raises ConfigError listing the known ones."""
    names = split_list(text, "--models")
    if not names:
        raise ConfigError("--models is empty; known models: " + ", ".join(SPECS))
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        raise ConfigError(f"unknown model {unknown[0]!r}; known models: {', '.join(SPECS)}")
    return list(dict.fromkeys(names))


def build_model(name: str, ctx: ModelContext | None = None) -> Recommender:
    return spec(name).builder(ctx or ModelContext())


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
    for cls in saved_model_classes():
        if name in cls.loadable_names():
            if issubclass(cls, HasMembers):  # made of other saved models: it loads them through this function
                return cls.load_with_members(directory, load_model)
            return cls.load(directory)
    raise ConfigError(f"{directory} holds a {name!r} model, which this zsrec version cannot load")
