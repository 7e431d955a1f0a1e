"""`cross-encoder`: a base recommender's top-N candidates re-ranked by a purchase / rating classifier.

A cross-encoder reads the user and the item together (one transformer pass per pair), which is too slow to
rank a whole catalog but affordable for a base model's shortlist. `score(users, items)` asks the base model
(default `zero-shot`) for its scores, sends each user's top `top_n` candidates (not already in their history)
through the classifier, and returns the classifier's scores for those and, for every other item, a lower
score that keeps the base model's order, so the full ranking stays well defined.

A saved cross-encoder is a folder: `config.json`, `cross_encoder.safetensors` (the classifier's weights),
`backbone_config.json` (its transformers config), `tokenizer/`, `training_log.json`, `texts.json` (the
rendered item and user texts), the user histories as `.npy`, and the base model in `base/` (written by its
own `save`, read back through `load_model`). Loading builds the network from its config and reads
safetensors and JSON only: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import safetensors.torch
import torch

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, first_validation_split
from zsrec.encoders.loading import require_fp32
from zsrec.encoders.sentence_transformer import packaged_minilm_path
from zsrec.encoders.templates import ItemTextTemplate, UserTextTemplate
from zsrec.errors import ConfigError
from zsrec.io import atomic_write_bytes, atomic_write_text
from zsrec.models.base import ModelBuilder, ModelLoader, Recommender, mask_seen
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.finetuned import tiny_bert_config
from zsrec.training.cross_encoder import (
    TINY_RANDOM,
    CrossEncoderTrainingSettings,
    PairSet,
    PairTexts,
    count_trainable,
    label_source,
    label_values,
    pair_metrics,
    pair_scores,
    predict_logits,
    task_pairs,
    train_cross_encoder,
    training_pairs,
)
from zsrec.vectors import standardise

WEIGHTS = "cross_encoder.safetensors"
BACKBONE_CONFIG = "backbone_config.json"
TOKENIZER = "tokenizer"
TRAINING_LOG = "training_log.json"
TEXTS = "texts.json"  # the rendered item and user texts: scoring needs them, and .npy of strings would pickle
BASE = "base"


@dataclass(frozen=True)
class CrossEncoderSettings:
    """The classifier's backbone and texts, the base model it re-ranks, and how it is trained."""

    backbone: str = "minilm"  # "minilm" (packaged), a local transformers model folder, or "tiny-random" (tests)
    base: str = "zero-shot"  # registry name of the model whose top candidates are re-ranked
    encoder: str = "minilm"  # encoder spec of the base model's text embeddings
    top_n: int = 20  # candidates per user re-ranked by the classifier
    base_weight: float = 0.0  # inside the top-N: score = z(classifier) + base_weight · z(base); 0 = classifier only
    # where a tuned base (zero-shot, ensemble) holds out its validation categories; the registry sets it to an
    # evaluation's held-out level (ModelContext.validation_level); None = the base's own default
    base_validation_level: int | None = None
    item_template: ItemTextTemplate = field(
        default_factory=lambda: ItemTextTemplate(max_description_chars=100)
    )  # the item segment
    user_template: UserTextTemplate = field(default_factory=UserTextTemplate)  # the profile part of the user segment
    training: CrossEncoderTrainingSettings = field(default_factory=CrossEncoderTrainingSettings)

    def __post_init__(self) -> None:
        if self.top_n < 1:
            raise ConfigError(f"top_n must be >= 1, got {self.top_n}")
        if self.base_weight < 0:
            raise ConfigError(f"base_weight must be >= 0, got {self.base_weight}")
        if self.base == "cross-encoder":
            raise ConfigError("base must be another model than 'cross-encoder'")
        if not self.backbone.strip():
            raise ConfigError("backbone must name a model: 'minilm', 'tiny-random' or a folder")

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "base": self.base,
            "encoder": self.encoder,
            "top_n": self.top_n,
            "base_weight": self.base_weight,
            "base_validation_level": self.base_validation_level,
            "item_template": self.item_template.to_dict(),
            "user_template": self.user_template.to_dict(),
            "training": asdict(self.training),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CrossEncoderSettings:
        values = dict(values)
        values["item_template"] = ItemTextTemplate.from_dict(values.get("item_template", {}))
        values["user_template"] = UserTextTemplate.from_dict(values.get("user_template", {}))
        values["training"] = CrossEncoderTrainingSettings(**values.get("training", {}))
        return cls(**values)


def load_backbone(spec: str, n_labels: int, *, seed: int = 0) -> tuple[torch.nn.Module, Any]:
    """A sequence classifier with `n_labels` outputs (its classification layer freshly initialised, seeded)
    and its tokenizer, from "minilm", "tiny-random" or a local folder; weights from safetensors only."""
    require_fp32(spec, "the cross-encoder")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialised": the classifier, as intended
    try:
        if spec == TINY_RANDOM:
            tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
            # at BERT's initializer_range 0.02 a model this narrow starts too flat to learn quickly
            config = tiny_bert_config(tokenizer.vocab_size, initializer_range=0.2, num_labels=n_labels)
            return AutoModelForSequenceClassification.from_config(config), tokenizer
        folder = packaged_minilm_path() if spec == "minilm" else Path(spec).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"cross-encoder backbone {spec!r} is not 'minilm', 'tiny-random' or a model folder")
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=n_labels, use_safetensors=True, local_files_only=True
        )
        return model, AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except OSError as err:
        raise ConfigError(f"cannot load cross-encoder backbone {spec!r}: {err}") from err
    finally:
        hf_logging.set_verbosity(verbosity)


class CrossEncoderRecommender(Recommender):
    """Re-ranks a base model's top-N candidates per user with a fine-tuned cross-encoder (see module doc).

    `fit(data)` fits the base model on `data`, then trains the classifier on pairs from `data.interactions`,
    validating on categories held out of `data` (`zsrec.training.cross_encoder`). After fitting:
    `training_log_` (per-epoch dicts), `training_` (summary), `n_trainable_params_`, `label_values_`.
    """

    name = "cross-encoder"
    settings_class = CrossEncoderSettings

    def __init__(
        self,
        settings: CrossEncoderSettings | None = None,
        *,
        embeddings: EmbeddingSource | None = None,
        base: Recommender | None = None,
        build_model: ModelBuilder | None = None,
    ) -> None:
        super().__init__(settings or CrossEncoderSettings())
        self._embeddings = embeddings
        self._base = base  # an unfitted base model to use instead of building `settings.base`
        # builds the base model from its registered name; the registry passes its own (`cross_encoder_model`)
        self._build_model = build_model

    # -- training ----------------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> Self:
        s, t = self.settings, self.settings.training
        started = time.perf_counter()
        self._remember(data)
        base = self._base or self._build_base()
        self.base_ = base.fit(data)
        base_seconds = time.perf_counter() - started

        source = label_source(data, t)
        self.label_values_ = label_values(data, source)
        self.texts_ = PairTexts.build(data, s.item_template, s.user_template, t.history_items)
        split = first_validation_split(data, t)
        train_on = data if split is None else split.train
        train = training_pairs(train_on, self.texts_, t, source, self.label_values_)
        validation = None
        if split is not None:
            validation = task_pairs(split, self.texts_, t, source, self.label_values_, ratings=data.interactions)
        self.model_, self.tokenizer_ = load_backbone(s.backbone, len(self.label_values_), seed=t.seed)
        self.n_trainable_params_ = count_trainable(self.model_)
        train_started = time.perf_counter()
        log = train_cross_encoder(
            self.model_, self.tokenizer_, train, self.texts_, t, self.label_values_, validation=validation
        )
        self.training_log_ = log.pop("epochs")
        self.training_ = {
            **log,
            "labels": source,
            "label_values": self.label_values_,
            "validation_categories": None if split is None else list(split.heldout_categories),
            "n_trainable_params": self.n_trainable_params_,
            "base_fit_seconds": base_seconds,
            "train_seconds": time.perf_counter() - train_started,
        }
        return self

    # -- scoring -----------------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Classifier scores for each user's base top-N unseen items among `items`; below them, every other
        item in the base model's order."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        base = np.asarray(self.base_.score(users, items), dtype=np.float64)
        if len(users) == 0 or len(items) == 0:
            return base.astype(np.float32)
        choose = base.copy()
        mask_seen(choose, users, items, self.histories_)
        n = min(self.settings.top_n, len(items))
        top = np.argpartition(-choose, n - 1, axis=1)[:, :n]  # (B, n) columns of the shortlist
        reranked = self._shortlist_scores(users, items, top, base)  # (B, n)
        # everything else: the base order, strictly below the lowest re-ranked score of the row
        z = standardise(base).astype(np.float64)
        out = reranked.min(axis=1, keepdims=True) - 1.0 - (z.max(axis=1, keepdims=True) - z)
        np.put_along_axis(out, top, reranked, axis=1)
        return out.astype(np.float32)

    def _shortlist_scores(self, users: np.ndarray, items: np.ndarray, top: np.ndarray, base: np.ndarray) -> np.ndarray:
        user_texts = [self.texts_.user_text(int(u), self.histories_[int(u)]) for u in users]
        first = [user_texts[r] for r in range(len(users)) for _ in range(top.shape[1])]
        second = [self.texts_.item_texts[int(i)] for i in items[top].ravel()]
        scores = self.classify(first, second).reshape(top.shape)
        if self.settings.base_weight > 0:
            shortlist_base = np.take_along_axis(base, top, axis=1)
            scores = standardise(scores) + self.settings.base_weight * standardise(shortlist_base)
        return np.asarray(scores, dtype=np.float64)

    def classify(self, user_texts: list[str], item_texts: list[str]) -> np.ndarray:
        """Ranking score of each (user text, item text) pair (log-odds of interacted, or expected rating)."""
        return pair_scores(self.logits(user_texts, item_texts), self.label_values_)

    def logits(self, user_texts: list[str], item_texts: list[str]) -> np.ndarray:
        """Raw classifier logits (n, num_labels)."""
        t = self.settings.training
        threads = torch.get_num_threads()
        torch.set_num_threads(t.threads)
        try:
            return predict_logits(
                self.model_,
                self.tokenizer_,
                user_texts,
                item_texts,
                max_length=t.max_length,
                batch_size=t.inference_batch_size,
            )
        finally:
            torch.set_num_threads(threads)

    def pair_metrics(self, pairs: PairSet) -> dict[str, float]:
        """Accuracy, precision / recall / F1 (macro and micro), loss and AUC on labelled pairs."""
        self._check_fitted()
        return pair_metrics(
            self.model_, self.tokenizer_, pairs, self.texts_, self.settings.training, self.label_values_
        )

    def held_out_pairs(
        self, split: EvalSplit, *, ratings: pd.DataFrame | None = None, max_pairs: int = 2000, seed: int = 1
    ) -> PairSet:
        """Labelled pairs of an evaluation split's held-out categories (for `pair_metrics`): its targets as
        positives and held-out items the users did not touch as negatives (or, for a rating classifier, the
        targets' ratings looked up in `ratings`, an interaction log with a `rating` column)."""
        self._check_fitted()
        t, source = self.settings.training, self.training_["labels"]
        return task_pairs(
            split, self.texts_, t, source, self.label_values_, ratings=ratings, max_pairs=max_pairs, seed=seed
        )

    # -- persistence -------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        super()._check_fitted()
        if not hasattr(self, "model_"):
            raise ConfigError(f"{type(self).__name__} is only partly fitted: fit(data) did not finish")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config() | {"settings": self.settings.to_dict()}
        if hasattr(self, "label_values_"):
            config["label_values"] = self.label_values_
            config["n_trainable_params"] = self.n_trainable_params_
        return config

    def save(self, directory: str | Path) -> None:
        """Base model, tokenizer, weights and logs first; config.json last (a folder without it is unusable)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.base_.save(directory / BASE)
        _save_tokenizer(self.tokenizer_, directory / TOKENIZER)
        weights = {k: v.detach().contiguous() for k, v in self.model_.state_dict().items()}
        atomic_write_bytes(directory / WEIGHTS, safetensors.torch.save(weights, metadata={"model": self.name}))
        atomic_write_text(directory / BACKBONE_CONFIG, self.model_.config.to_json_string())
        log = {"epochs": self.training_log_, **self.training_}
        atomic_write_text(directory / TRAINING_LOG, json.dumps(log, indent=2))
        _save_texts(self.texts_, directory / TEXTS)
        super().save(directory)

    def _build_base(self) -> Recommender:
        if self._build_model is None:
            raise ConfigError(
                f"this cross-encoder cannot build its base model {self.settings.base!r}: pass base=, or make it "
                "with zsrec.models.registry.cross_encoder_model (or build_model('cross-encoder', ...))"
            )
        return self._build_model(self.settings.base)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        raise ConfigError(
            f"{directory} holds a cross-encoder, made of other saved models: "
            "load it with zsrec.models.registry.load_model"
        )

    @classmethod
    def load_with_members(cls, directory: str | Path, load_member: ModelLoader) -> Self:
        """`load`, the base model read from `base/` by `load_member` (the registry's `load_model`)."""
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        directory = Path(directory)
        for needed in (WEIGHTS, BACKBONE_CONFIG, TOKENIZER, TRAINING_LOG, TEXTS, BASE):
            if not (directory / needed).exists():
                raise ConfigError(f"cross-encoder folder {directory} lacks {needed}")
        model = super().load(directory)
        config = json.loads((directory / "config.json").read_text())
        model.label_values_ = [float(v) for v in config["label_values"]]
        model.n_trainable_params_ = int(config["n_trainable_params"])
        model.base_ = load_member(directory / BASE)
        backbone = json.loads((directory / BACKBONE_CONFIG).read_text())
        hf_config = AutoConfig.for_model(backbone.pop("model_type"), **backbone)
        network = AutoModelForSequenceClassification.from_config(hf_config)
        network.load_state_dict(safetensors.torch.load_file(directory / WEIGHTS))
        model.model_ = network.eval()
        model.tokenizer_ = AutoTokenizer.from_pretrained(directory / TOKENIZER, local_files_only=True)
        log = json.loads((directory / TRAINING_LOG).read_text())
        model.training_log_ = log.pop("epochs")
        model.training_ = log
        model.texts_ = _load_texts(directory / TEXTS)
        return model


def _save_tokenizer(tokenizer: Any, folder: Path) -> None:
    """`save_pretrained` into a temporary folder beside `folder`, then each file moved into place atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".tokenizer-") as tmp:
        tokenizer.save_pretrained(tmp)
        for path in Path(tmp).iterdir():
            if path.is_file():
                os.replace(path, folder / path.name)


def _save_texts(texts: PairTexts, path: Path) -> None:
    payload = {
        "item_texts": texts.item_texts,
        "titles": texts.titles,
        "profiles": texts.profiles,
        "history_items": texts.history_items,
    }
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False))


def _load_texts(path: Path) -> PairTexts:
    values = json.loads(path.read_text())
    return PairTexts(values["item_texts"], values["titles"], values["profiles"], int(values["history_items"]))
