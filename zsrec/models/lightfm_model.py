"""Hybrid baseline: LightFM (WARP) with item features = identity + TF-IDF terms of the item text.

An item's vector is the sum of its features' vectors, so a new item, which has no interactions, is scored from
its text features alone: the words it shares with items people bought.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from zsrec.data.dataset import Dataset
from zsrec.encoders.templates import ItemTextTemplate, with_item_template
from zsrec.errors import ConfigError
from zsrec.models.base import RefitsOnInteractions

LOSSES = ("warp", "bpr", "warp-kos", "logistic")
INSTALL_HINT = "pip install --no-build-isolation --no-deps lightfm==1.17 (with setuptools and wheel in the venv)"


def _full_text_template() -> ItemTextTemplate:
    return ItemTextTemplate(fields=("title", "brand", "description"), max_description_chars=None)


@dataclass(frozen=True)
class LightFmSettings:
    no_components: int = 64  # latent dimension
    loss: str = "warp"  # LightFM loss: warp ranks well with implicit feedback
    epochs: int = 20  # passes over the interactions
    learning_rate: float = 0.05  # adagrad step
    item_alpha: float = 1e-6  # L2 penalty on item feature vectors (per sample)
    user_alpha: float = 1e-6  # L2 penalty on user vectors (per sample)
    seed: int = 0
    num_threads: int = 1  # one thread keeps fits reproducible
    use_identity: bool = True  # a per-item feature for items with interactions (new items have text only)
    template: ItemTextTemplate = field(default_factory=_full_text_template)  # text the TF-IDF terms come from
    max_features: int = 5000  # TF-IDF vocabulary: the most frequent terms
    min_df: int = 2  # ignore terms in fewer items than this

    def __post_init__(self) -> None:
        for name in ("no_components", "epochs", "num_threads", "max_features", "min_df"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.item_alpha < 0 or self.user_alpha < 0:
            raise ConfigError(f"item_alpha and user_alpha must be >= 0, got {self.item_alpha}, {self.user_alpha}")


def _import_lightfm() -> Any:
    try:
        from lightfm import LightFM
    except ImportError as exc:
        raise ConfigError(f"the lightfm model needs the lightfm package: {INSTALL_HINT}") from exc
    return LightFM


class LightFmRecommender(RefitsOnInteractions):
    """Score = user vector · Σ item feature vectors + item bias, learned by LightFM on the training interactions.

    Only items with interactions are trained on (WARP would otherwise sample the new items as negatives on
    every step and learn that their words mean "not bought"); every item is then scored through its features.
    Scoring is plain numpy on saved arrays: a loaded model needs lightfm only to `partial_fit`.

    `partial_fit(events)` refits from scratch (same seed) on the fit interactions plus the events. LightFM's
    `fit_partial` on the events alone would move only the vectors those few events touch, and the text
    features they share with old items, towards a handful of users, with nothing pulling the rest back; a
    refit gives exactly the model a fit on all the interactions gives.
    """

    name = "lightfm"
    _state = (
        "feature_data_",
        "feature_indices_",
        "feature_indptr_",
        "feature_shape_",
        "user_vectors_",
        "user_biases_",
        "item_vectors_",
        "item_biases_",
    )

    def __init__(self, settings: LightFmSettings | None = None) -> None:
        super().__init__(settings or LightFmSettings())

    def fit(self, data: Dataset) -> Self:
        _import_lightfm()  # before any state changes
        self._remember(data)
        s = self.settings
        vec = TfidfVectorizer(max_features=s.max_features, min_df=s.min_df, stop_words="english", dtype=np.float32)
        try:
            text = vec.fit_transform(s.template.render(data.items)).tocsr()
        except ValueError as exc:  # scikit-learn's "empty vocabulary"
            raise ConfigError(f"lightfm found no terms in the item texts with min_df={s.min_df}: {exc}") from exc
        self._store_features(text)
        self._fit_interactions(data)
        return self

    def _store_features(self, text: sparse.csr_matrix) -> None:
        """Item features as rows summing to 1 (LightFM's advice): text terms L1-normalised, halved next to
        an identity feature, which only items with interactions get (an untrained one would be noise)."""
        row_sums = np.asarray(text.sum(axis=1)).ravel()
        row_sums[row_sums == 0] = 1.0
        text = sparse.diags(1.0 / row_sums) @ text
        self.feature_data_ = text.data.astype(np.float32)
        self.feature_indices_, self.feature_indptr_ = text.indices.astype(np.int32), text.indptr.astype(np.int64)
        self.feature_shape_ = np.asarray(text.shape, dtype=np.int64)

    def _item_features(self, trained: np.ndarray) -> sparse.csr_matrix:
        """Every item's features (items × (text terms + identities of the `trained` items))."""
        shape = tuple(int(n) for n in self.feature_shape_)
        text = sparse.csr_matrix((self.feature_data_, self.feature_indices_, self.feature_indptr_), shape=shape)
        if not self.settings.use_identity:
            return text
        has_id = np.zeros(self.n_items_, dtype=bool)
        has_id[trained] = True
        identity = sparse.csr_matrix(
            (np.ones(len(trained), dtype=np.float32), (trained, np.arange(len(trained)))),
            shape=(self.n_items_, len(trained)),
        )
        scale = sparse.diags(np.where(has_id, 0.5, 1.0).astype(np.float32))
        return (scale @ sparse.hstack([text, identity])).tocsr()

    def _refit(self) -> None:
        LightFM = _import_lightfm()  # noqa: N806 (a class)
        s = self.settings
        users, items = self._interaction_pairs()
        trained = np.unique(items)  # columns of the interaction matrix: only items someone chose
        column = np.full(self.n_items_, -1, dtype=np.int64)
        column[trained] = np.arange(len(trained))
        matrix = sparse.coo_matrix(
            (np.ones(len(users), dtype=np.float32), (users, column[items])), shape=(self.n_users_, len(trained))
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # WARP reads presence, not counts
        features = self._item_features(trained)
        model = LightFM(
            no_components=s.no_components,
            loss=s.loss,
            learning_rate=s.learning_rate,
            item_alpha=s.item_alpha,
            user_alpha=s.user_alpha,
            random_state=np.random.RandomState(s.seed),
        )
        model.fit(matrix, item_features=features[trained], epochs=s.epochs, num_threads=s.num_threads)
        # identity user features: row u of the user tables is user u
        self.user_vectors_ = np.asarray(model.user_embeddings, dtype=np.float32)
        self.user_biases_ = np.asarray(model.user_biases, dtype=np.float32)
        self.item_vectors_ = np.asarray(features @ model.item_embeddings, dtype=np.float32)
        self.item_biases_ = np.asarray(features @ model.item_biases, dtype=np.float32)

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Refit on the fit interactions plus `events` (see the class docstring); histories grow too."""
        _import_lightfm()  # before any state changes
        return super().partial_fit(events)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users, items = np.asarray(users), np.asarray(items)
        scores = self.user_vectors_[users] @ self.item_vectors_[items].T
        return scores + self.item_biases_[items][None, :] + self.user_biases_[users][:, None]

    @classmethod
    def _settings_from_dict(cls, values: dict[str, Any] | None) -> LightFmSettings:
        return LightFmSettings(**with_item_template(values))
