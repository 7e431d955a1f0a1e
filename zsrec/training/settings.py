"""The settings every trainer shares, and the fixed choices they take.

`TrainingSettings` holds what all three trainers (heads, the fine-tuned two-tower encoder, the cross-encoder)
declare: optimiser steps, how many pairs, how validation categories are held out, threads, seed and adversarial
training. `RankingTrainingSettings` adds what the two rankers (heads and the two-tower encoder) share: pairs of
(history → item) scored at a temperature, and early stopping on validation NDCG@10 with the epoch gate. Each
trainer's own settings subclass one of them and keep only their own fields; a field whose default differs per
trainer has no default here, so a subclass that forgets to set one fails when it is defined.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from zsrec.errors import ConfigError, check_at_most
from zsrec.training.adversarial import AdversarialSettings


class Choice(enum.StrEnum):
    """A fixed choice of a setting: a string (so config.json and comparisons with plain strings work) that
    reads as one in messages and reprs."""

    def __repr__(self) -> str:
        return repr(self.value)


class PairHistory(Choice):
    """A training pair's input history."""

    OTHER_CATEGORIES = "other-categories"  # the user's items outside the target's category (a new category)
    LEAVE_ONE_OUT = "leave-one-out"  # every other item of the user


class Postprocess(Choice):
    """Item vectors before scoring."""

    CENTER = "center"  # the catalog mean subtracted, then normalised (as zero-shot's `postprocess="center"`)
    NONE = "none"  # as encoded


def set_choice(settings: object, name: str, choices: type[Choice]) -> None:
    """Turn the string field `name` of a frozen `settings` into its `choices` member, or raise ConfigError
    naming the setting and the values it takes (a config.json or the CLI gives plain strings)."""
    value = getattr(settings, name)
    allowed = tuple(str(c) for c in choices)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
    object.__setattr__(settings, name, choices(value))


@dataclass(frozen=True)
class TrainingSettings:
    """What every trainer is told: its optimiser, its pairs, its validation categories, threads and seed."""

    epochs: int  # most passes over the training pairs
    batch_size: int  # training pairs per optimiser step
    lr: float  # AdamW learning rate
    weight_decay: float  # AdamW decoupled weight decay
    max_pairs: int  # at most this many training pairs per epoch (a seeded sample beyond that)
    level: int | None = None  # category level of validation and pairs; None = top level if it has >= 4
    validation_fraction: float = 0.2  # share of the level's categories (with interactions) held out
    min_history: int = 3  # a validation user needs this many interactions outside the validation categories
    min_validation_users: int = 20  # fewer = no validation: train all `epochs` on all the data, keep the last
    threads: int = 2  # torch CPU threads while training
    seed: int = 0  # seeds the validation categories, the initial weights, pair order and negatives
    # adversarial training (embedding attacks, text augmentation): each trainer refuses what it cannot apply
    adversarial: AdversarialSettings = field(default_factory=AdversarialSettings)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_pairs", "min_history", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        # far beyond useful values, below what would exhaust memory (a batch is one tensor) or the machine
        check_at_most(self, epochs=10_000, batch_size=65_536, max_pairs=100_000_000, threads=1_024)
        for name in ("weight_decay", "min_validation_users"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.level is not None and self.level < 1:
            raise ConfigError(f"level must be >= 1 or None, got {self.level}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if isinstance(self.adversarial, dict):  # read back from a model folder's config.json
            object.__setattr__(self, "adversarial", AdversarialSettings.from_dict(self.adversarial))
        if not isinstance(self.adversarial, AdversarialSettings):
            raise ConfigError(f"adversarial must be AdversarialSettings, got {type(self.adversarial).__name__}")


@dataclass(frozen=True)
class RankingTrainingSettings(TrainingSettings):
    """The rankers' settings (heads, two-tower encoder): (history → item) pairs scored at a temperature, and
    early stopping on validation NDCG@10 with the epoch gate."""

    temperature: float = 0.05  # logits = score / temperature
    # Input history of a pair: "other-categories" (the user's items outside the target's category, like a
    # new category at test time) or "leave-one-out" (every other item of the user).
    pair_history: PairHistory = PairHistory.OTHER_CATEGORIES
    patience: int = 3  # stop after this many epochs without a better validation NDCG@10
    # Keep the best trained epoch over the untrained start (epoch 0) only if its per-user validation gain has a
    # paired bootstrap CI above 0 at this confidence (the tuner's and ensemble's gate); None = the best mean wins.
    # A small mean gain on a few validation users can be noise that a slightly different run does not repeat,
    # and a head kept for one has lost on the test categories.
    epoch_gate: float | None = 0.95
    # Item vectors when training (heads) or scoring and validating (encoder): "center" (the catalog mean of the
    # same encoder's item vectors subtracted, then normalised, as zero-shot's `postprocess="center"`) or "none".
    # Centring matters where item texts share boilerplate.
    postprocess: Postprocess = Postprocess.CENTER

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        set_choice(self, "pair_history", PairHistory)
        set_choice(self, "postprocess", Postprocess)
        if self.epoch_gate is not None and not 0.0 < self.epoch_gate < 1.0:
            raise ConfigError(f"epoch_gate must be in (0, 1) or None, got {self.epoch_gate}")
