"""Trained heads over frozen text embeddings: `seed-linear`, `two-tower-head` and `mlp-head`.

Each scores (user u, item i) from the item's frozen text embedding e_i and the user vector e_u (the
normalised mean of u's history embeddings, optionally plus u's profile-text embedding). The embeddings never
change; only a small head on top learns, from the training interactions alone (`zsrec.training.heads`:
pairs, validation categories carved from the training data, early stopping). A saved head is a folder:
`config.json`, `head.safetensors` (the weights), `training_log.json` and the item/profile vectors as `.npy`.
"""

from __future__ import annotations

import copy
import json
from abc import abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import safetensors.torch
import torch
from torch import nn

from zsrec.data.dataset import Dataset
from zsrec.data.splits import default_validation_level
from zsrec.encoders.templates import ItemTextTemplate, UserTextTemplate
from zsrec.errors import ConfigError
from zsrec.io import atomic_write_bytes, atomic_write_text
from zsrec.models.base import (
    Recommender,
    append_item_ids,
    append_rows,
    append_users_with_profiles,
    with_text_columns,
)
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.training.adversarial import TextAugmenter
from zsrec.training.heads import (
    HeadTrainingSettings,
    ScoringHead,
    StuffedNegatives,
    build_training_pairs,
    history_vectors,
    train_head,
    validation_ndcg,
    validation_task,
)
from zsrec.vectors import recentre

WEIGHTS = "head.safetensors"
TRAINING_LOG = "training_log.json"


# -- the heads (torch modules) ---------------------------------------------------------------------------
class SeedLinearHead(ScoringHead):
    """f(u, i) = Wᵀ(e_i + e_u) + b, the seed's formula (W: d → 1)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 1)
        nn.init.zeros_(self.linear.weight)  # untrained: every item scores the same
        nn.init.zeros_(self.linear.bias)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        # Wᵀ(e_i + e_u) + b = Wᵀe_i + (Wᵀe_u + b), computed in that form so no (B, M, d) sum is built
        item_part = (items @ self.linear.weight.T).squeeze(1)[cand]  # (B, M)
        return item_part + self.linear(users)  # + (B, 1)

    @torch.no_grad()
    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (items @ self.linear.weight.T).T + self.linear(users)  # (1, N) + (B, 1)


class _Residual(nn.Module):
    """x + Δ(x) with Δ = 0 at initialisation: a linear map (hidden 0) or a one-hidden-layer MLP."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        layers: list[nn.Module] = (
            [nn.Linear(dim, dim)] if hidden == 0 else [nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)]
        )
        nn.init.zeros_(layers[-1].weight)  # type: ignore[arg-type]
        nn.init.zeros_(layers[-1].bias)  # type: ignore[arg-type]
        self.delta = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.delta(x)


class TwoTowerHead(ScoringHead):
    """f(u, i) = g(e_u) · h(e_i) (+ wᵀe_i), g and h residual maps that start as the identity, so the untrained
    head ranks exactly like zero-shot-mean (cosine of history mean and item)."""

    def __init__(self, dim: int, hidden_dim: int, item_prior: bool) -> None:
        super().__init__()
        self.user_tower = _Residual(dim, hidden_dim)
        self.item_tower = _Residual(dim, hidden_dim)
        self.prior = _zero_linear(dim) if item_prior else None

    @torch.no_grad()
    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._all_pairs(users, items)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        return self._all_pairs(users, items).gather(1, cand)

    def _all_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        scores = self.user_tower(users) @ self.item_tower(items).T  # (B, N)
        return scores if self.prior is None else scores + self.prior(items).T


class InteractionMlpHead(ScoringHead):
    """f(u, i) = e_u·e_i + MLP([p_u, p_i, p_u⊙p_i, |p_u − p_i|]) (+ wᵀe_i), with p = P·e a learned d → proj_dim map.

    The MLP's last layer starts at zero, so the untrained head is zero-shot-mean. Pairwise features are taken
    on the projections because the MLP runs once per (user, item) pair: 4·proj_dim inputs instead of 4·d keep
    scoring thousands of users against thousands of items a matter of seconds on a CPU.
    """

    pairs_per_chunk = 1 << 15

    def __init__(self, dim: int, proj_dim: int, hidden_dim: int, item_prior: bool) -> None:
        super().__init__()
        if hidden_dim < 1:
            raise ConfigError(f"hidden_dim must be >= 1 for mlp-head, got {hidden_dim}")
        self.proj = nn.Linear(dim, proj_dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(4 * proj_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, 1))
        nn.init.zeros_(self.mlp[-1].weight)  # type: ignore[arg-type]
        nn.init.zeros_(self.mlp[-1].bias)  # type: ignore[arg-type]
        self.prior = _zero_linear(dim) if item_prior else None

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        cosine = (users @ items.T).gather(1, cand)  # (B, M) the zero-shot score
        pu, pi_all = self.proj(users), self.proj(items)  # (B, p), (N, p)
        # The first layer W·[p_u, p_i, p_u⊙p_i, |p_u − p_i|] + b split by blocks: the p_u and p_i blocks are
        # computed once per user and once per item, so only the two pairwise blocks run per (user, item) pair
        # (half the work of multiplying the concatenated (B, M, 4p) features; the same weights and result).
        first = self.mlp[0]
        w_u, w_i, w_prod, w_diff = first.weight.split(pu.shape[1], dim=1)  # type: ignore[union-attr]
        pi = pi_all[cand]  # (B, M, p)
        pu3 = pu.unsqueeze(1)  # (B, 1, p)
        hidden = (
            (pu @ w_u.T + first.bias).unsqueeze(1)  # (B, 1, h)
            + (pi_all @ w_i.T)[cand]  # (B, M, h)
            + (pu3 * pi) @ w_prod.T
            + (pu3 - pi).abs() @ w_diff.T
        )
        scores = cosine + self.mlp[2](self.mlp[1](hidden)).squeeze(-1)
        return scores if self.prior is None else scores + self.prior(items).squeeze(1)[cand]


def _zero_linear(dim: int) -> nn.Linear:
    """The item prior wᵀe_i, zero at the start (no bias: a constant does not change a ranking)."""
    layer = nn.Linear(dim, 1, bias=False)
    nn.init.zeros_(layer.weight)
    return layer


# -- the recommenders -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadSettings:
    """What a head reads (encoder, item and user texts) and how it is trained."""

    encoder: str = "minilm"  # encoder spec, as for zero-shot
    template: ItemTextTemplate = field(default_factory=ItemTextTemplate)  # item text for the encoder
    user_template: UserTextTemplate = field(default_factory=UserTextTemplate)  # user profile text
    profile_weight: float = 0.0  # user vector = normalise(history mean + profile_weight · profile vector)
    item_prior: bool = False  # two-tower-head, mlp-head: add a text-predicted item prior wᵀe_i
    training: HeadTrainingSettings = field(default_factory=HeadTrainingSettings)

    def __post_init__(self) -> None:
        if self.profile_weight < 0:
            raise ConfigError(f"profile_weight must be >= 0, got {self.profile_weight}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "template": self.template.to_dict(),
            "user_template": self.user_template.to_dict(),
            "profile_weight": self.profile_weight,
            "item_prior": self.item_prior,
            "training": asdict(self.training),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HeadSettings:
        values = dict(values)
        values["template"] = ItemTextTemplate.from_dict(values.get("template", {}))
        values["user_template"] = UserTextTemplate.from_dict(values.get("user_template", {}))
        values["training"] = HeadTrainingSettings(**values.get("training", {}))
        return cls(**values)


class HeadRecommender(Recommender):
    """Shared fit/score/save/load of the trained heads; subclasses only build their `ScoringHead`.

    `fit(data)` learns from `data.interactions` only: it holds validation categories out of `data`, trains on
    the rest with early stopping on their NDCG@10, and keeps the best epoch (optionally retraining on all of
    `data` for that many epochs, `training.refit`). The per-epoch log is in `training_log_`.
    """

    settings_class = HeadSettings
    _state = ("item_vectors_", "profile_vectors_", "catalog_mean_")

    def __init__(self, settings: HeadSettings | None = None, *, embeddings: EmbeddingSource | None = None) -> None:
        super().__init__(settings or HeadSettings())
        self._embeddings = embeddings

    @property
    def embeddings(self) -> EmbeddingSource:
        if self._embeddings is None:
            self._embeddings = EmbeddingSource(self.settings.encoder)
        return self._embeddings

    @abstractmethod
    def new_head(self, dim: int) -> ScoringHead:
        """An untrained head for `dim`-dimensional embeddings, built from the settings."""

    def fit(self, data: Dataset) -> Self:
        s, t = self.settings, self.settings.training
        self._remember(data)
        raw = np.asarray(self.embeddings.items(data.items, s.template), dtype=np.float32)
        dim = raw.shape[1]
        # the training catalog's mean, kept so that every later text (stuffed copies, a tampered catalog) is
        # centred the same way; zeros = no centring
        self.catalog_mean_ = (
            raw.mean(axis=0, keepdims=True) if t.postprocess == "center" else np.zeros((1, dim), dtype=np.float32)
        )
        self.item_vectors_ = self._centred(raw)
        if s.profile_weight > 0:
            self.profile_vectors_ = np.asarray(self.embeddings.users(data.users, s.user_template), dtype=np.float32)
        else:
            self.profile_vectors_ = np.zeros((0, dim), dtype=np.float32)
        profile = {"profile_vectors": self._profiles(), "profile_weight": s.profile_weight}
        items = torch.from_numpy(self.item_vectors_)
        task = validation_task(data, self.item_vectors_, t, **profile)
        torch.manual_seed(t.seed)
        head = self.new_head(dim)
        if task is None:  # too little data to hold categories out: train the full number of epochs
            stuffed = self._stuffed(data, data)
            pairs = build_training_pairs(data, self.item_vectors_, t, **profile)
            log = train_head(head, pairs, items, t, stuffed=stuffed)
        else:
            stuffed = self._stuffed(data, task.split.train)
            pairs = build_training_pairs(task.split.train, self.item_vectors_, t, **profile)
            log = train_head(
                head,
                pairs,
                items,
                t,
                validate=lambda h: validation_ndcg(h, task),
                on_epoch=self._report_epoch,
                stuffed=stuffed,
            )
            if t.refit and log["best_epoch"] > 0:
                torch.manual_seed(t.seed)
                head = self.new_head(dim)
                all_pairs = build_training_pairs(data, self.item_vectors_, t, **profile)
                stuffed = self._stuffed(data, data)
                log["refit"] = train_head(head, all_pairs, items, t, epochs=log["best_epoch"], stuffed=stuffed)[
                    "epochs"
                ]
        log["validation"] = None if task is None else task.describe()
        self.head_ = head
        self.training_log_ = log
        self.n_trainable_params_ = sum(p.numel() for p in head.parameters() if p.requires_grad)
        self.user_vectors_ = self._user_vectors()
        return self

    def _stuffed(self, data: Dataset, train: Dataset) -> StuffedNegatives | None:
        """Stuffed copies of the items `train` has interactions with (adversarial training), or None."""
        t = self.settings.training
        if "stuffing" not in t.adversarial.augment:
            return None
        trained = np.unique(train.interactions["item"].to_numpy())
        categories = data.category_at(t.level or default_validation_level(data))
        augmenter = TextAugmenter.for_training(data.items, categories, trained, self.settings.template, t.adversarial)
        texts, stuffed_items = augmenter.stuffed_copies(np.random.default_rng(t.adversarial.seed))
        vectors = self.embeddings.texts(texts, kind="passage", namespace=self.settings.template.id)
        return StuffedNegatives(
            torch.from_numpy(stuffed_items),
            torch.from_numpy(self._centred(np.asarray(vectors, dtype=np.float32))),
            t.adversarial.augment_prob,
            no_gain=t.adversarial.stuffing_loss == "no-gain",
            weight=t.adversarial.weight,
        )

    def _report_epoch(self, entry: dict[str, Any]) -> None:
        if self.reporter is None:
            return
        loss = "" if entry.get("loss") is None else f", loss {entry['loss']:.4f}"
        ndcg = entry.get("validation_ndcg@10")
        valid = "" if ndcg is None else f", validation NDCG@10 {ndcg:.4f}"
        self.reporter.message(f"{self.name} epoch {entry['epoch']}{loss}{valid} ({entry['seconds']:.1f}s)")

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        u = torch.from_numpy(self.user_vectors_[np.asarray(users, dtype=np.int64)])
        i = torch.from_numpy(self.item_vectors_[np.asarray(items, dtype=np.int64)])
        return self.head_.scores(u, i).numpy()

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Append the events to the histories and re-derive the user vectors the head reads (no training)."""
        super().partial_fit(events)
        self.user_vectors_ = self._user_vectors()
        return self

    def add_items(self, items: pd.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
        """Append `items`, their text embedded by the frozen encoder and centred by the training catalog's mean,
        as the head reads every item (see `AcceptsNewItems`)."""
        items = with_text_columns(items)
        raw = self.embeddings.items(items, self.settings.template) if vectors is None else vectors
        fresh = self._centred(np.asarray(raw, dtype=np.float32))
        new = append_item_ids(self, items)
        append_rows(self, "item_vectors_", fresh)
        return new

    def add_users(self, user_ids: list[str]) -> np.ndarray:
        new = append_users_with_profiles(self, user_ids)
        self.user_vectors_ = self._user_vectors()
        return new

    def with_item_text(self, data: Dataset) -> Self:
        """The same head reading `data.items`' text (same catalog, e.g. tampered titles): item vectors
        re-encoded by the frozen encoder, user vectors re-derived from them; nothing retrained. Used by the
        robustness evaluation."""
        self._check_fitted()
        if data.n_items != self.n_items_:
            raise ConfigError(f"with_item_text needs the same catalog ({self.n_items_} items), got {data.n_items}")
        other = copy.copy(self)
        other.item_vectors_ = self._centred(
            np.asarray(self.embeddings.items(data.items, self.settings.template), dtype=np.float32)
        )
        other.user_vectors_ = other._user_vectors()
        return other

    def _centred(self, vectors: np.ndarray) -> np.ndarray:
        """Item text vectors as the head reads them: minus the training catalog's mean and re-normalised
        (`training.postprocess="center"`), or unchanged."""
        return recentre(vectors, self.catalog_mean_)

    def _profiles(self) -> np.ndarray | None:
        return self.profile_vectors_ if len(self.profile_vectors_) else None

    def _user_vectors(self) -> np.ndarray:
        return history_vectors(self.histories_, self.item_vectors_, self._profiles(), self.settings.profile_weight)

    # -- persistence -------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"settings": self.settings.to_dict()}

    def save(self, directory: str | Path) -> None:
        """Weights (safetensors) and training log first, then the arrays and config.json (see `Recommender`)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = {name: value.detach().contiguous() for name, value in self.head_.state_dict().items()}
        atomic_write_bytes(directory / WEIGHTS, safetensors.torch.save(weights, metadata={"model": self.name}))
        atomic_write_text(directory / TRAINING_LOG, json.dumps(self.training_log_, indent=2))
        super().save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        directory = Path(directory)
        model = super().load(directory)
        if not (directory / WEIGHTS).exists():
            raise FileNotFoundError(f"model folder {directory} lacks {WEIGHTS}")
        head = model.new_head(model.item_vectors_.shape[1])
        head.load_state_dict(safetensors.torch.load_file(directory / WEIGHTS))
        model.head_ = head.eval()
        model.training_log_ = json.loads((directory / TRAINING_LOG).read_text())
        model.user_vectors_ = model._user_vectors()
        return model


class SeedLinearRecommender(HeadRecommender):
    """`seed-linear`: the seed's f(u, i) = Wᵀ[e_item + e_user] + b, implemented faithfully.

    The user term Wᵀe_user + b is one number per user, the same for all items, so it never changes a ranking:
    every user gets the same order of candidates. What the model is, then, is a learned, text-predicted item
    prior, Wᵀe_item: how likely *any* user is to buy an item, read from its text. (Under the softmax loss the
    user term's gradient is zero; it is kept only to be faithful to the formula.) `item_prior` is ignored.
    """

    name = "seed-linear"

    def new_head(self, dim: int) -> ScoringHead:
        return SeedLinearHead(dim)


class TwoTowerRecommender(HeadRecommender):
    """`two-tower-head`: learned residual maps of user and item embeddings, score = their dot product."""

    name = "two-tower-head"

    def new_head(self, dim: int) -> ScoringHead:
        s = self.settings
        return TwoTowerHead(dim, s.training.hidden_dim, s.item_prior)


class MlpHeadRecommender(HeadRecommender):
    """`mlp-head`: zero-shot cosine plus an interaction MLP over the pair's projected embeddings."""

    name = "mlp-head"

    def new_head(self, dim: int) -> ScoringHead:
        t = self.settings.training
        return InteractionMlpHead(dim, t.proj_dim, t.hidden_dim, self.settings.item_prior)
