"""P(user adopts category): the one calibrated probability every scenario rests on.

A user "adopts" a category when they interact with at least one of its items. For a category with no
interactions yet, the evidence is zero-shot: the cosine between the user's history vector and the centroid
of the category's item texts (the `category-affinity` model), that cosine standardised over all categories
for the user (how much this category stands out for them), how active the user is, and how many items the
category has. A logistic regression over these four features is fitted on *validation* categories (held
out of `data` the same way test categories are, see `validation_category_splits`) and its output is then
calibrated (Platt or isotonic) on the same pairs, so that probabilities can be summed into a forecast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, validation_category_splits
from zsrec.errors import ConfigError, check_at_least, check_choice, check_fraction
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.zero_shot import ZeroShotRecommender, ZeroShotSettings, preset
from zsrec.scenarios.calibration import METHODS, Calibrator, fit_calibrator

FEATURES = ("cosine", "cosine_z", "log_history", "log_category_items")


@dataclass(frozen=True)
class AdoptionSettings:
    """How the category-level probabilities are built and calibrated."""

    level: int = 2  # category level whose categories users adopt
    calibration: str = "platt"  # "platt" or "isotonic", fitted on validation categories
    min_history: int = 3  # users with fewer distinct history items get no probability
    validation_fraction: float = 0.2  # share of the active categories held out per validation fold
    validation_folds: int = 2  # seeded folds of validation categories (their pairs are pooled)
    seed: int = 0
    encoder: str = "minilm"

    def __post_init__(self) -> None:
        check_at_least(self, level=1)
        check_choice(self, "calibration", METHODS)
        check_at_least(self, min_history=1)
        check_fraction(self, "validation_fraction")
        check_at_least(self, validation_folds=1)


class CategoryScorer:
    """Zero-shot user × category evidence at one level, from a `category-affinity` model fitted on `data`."""

    def __init__(self, data: Dataset, level: int, embeddings: EmbeddingSource) -> None:
        settings = preset("category-affinity", ZeroShotSettings(category_level=level))
        self.model = ZeroShotRecommender(settings, embeddings=embeddings).fit(data)
        self.data = data
        self.level = level
        paths = data.category_at(level).astype(str)
        self.names, index = np.unique(paths, return_inverse=True)  # same order as model.category_vectors_
        self.item_category = index  # per item, its category's row in `names`
        self.n_items = np.bincount(index, minlength=len(self.names))
        self.real = self.names != ""  # "" gathers items shallower than `level`: never a category
        self.history_lengths = np.asarray([len(np.unique(h)) for h in self.model.histories_], dtype=np.int64)

    def category_rows(self, categories: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows in `names` of level-`level` category paths; an unknown path raises ConfigError."""
        row = {n: i for i, n in enumerate(self.names.tolist())}
        missing = [c for c in categories if c not in row or c == ""]
        if missing:
            raise ConfigError(f"categories not found at level {self.level}: {missing[:5]}")
        return np.asarray([row[c] for c in categories], dtype=np.int64)

    def cosines(self, users: np.ndarray) -> np.ndarray:
        """(n_users, n_categories) cosine between each user's history vector and every category centroid."""
        return self.model.user_vectors(np.asarray(users, dtype=np.int64)) @ self.model.category_vectors_.T

    def features(
        self,
        users: np.ndarray,
        rows: np.ndarray,
        *,
        vectors: np.ndarray | None = None,
        n_items: np.ndarray | None = None,
    ) -> np.ndarray:
        """(n_users, len(rows), 4) features named in FEATURES.

        `vectors` / `n_items` replace the centroids and sizes of the chosen rows, for a category described
        only by text (a vector and an assumed size).
        """
        users = np.asarray(users, dtype=np.int64)
        all_cos = self.cosines(users)[:, self.real]
        mean, std = all_cos.mean(axis=1, keepdims=True), all_cos.std(axis=1, keepdims=True)
        std[std == 0] = 1.0
        if vectors is None:
            cos = self.cosines(users)[:, rows]
        else:
            cos = self.model.user_vectors(users) @ np.asarray(vectors, dtype=np.float32).T
        sizes = self.n_items[rows] if n_items is None else np.asarray(n_items)
        out = np.empty((len(users), cos.shape[1], len(FEATURES)), dtype=np.float32)
        out[..., 0] = cos
        out[..., 1] = (cos - mean) / std
        out[..., 2] = np.log1p(self.history_lengths[users])[:, None]
        out[..., 3] = np.log1p(sizes)[None, :]
        return out


@dataclass(frozen=True)
class AdoptionModel:
    """logit = features·weights + bias (standardised features), then a calibrator to probabilities."""

    mean: np.ndarray  # (n_features,) feature standardisation
    scale: np.ndarray
    weights: np.ndarray  # (n_features,)
    bias: float
    calibrator: Calibrator

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weights + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return self.calibrator.predict(self.logits(features))


def fit_adoption_model(features: np.ndarray, labels: np.ndarray, method: str = "platt") -> AdoptionModel:
    """Fit the logistic regression and its calibrator on validation pairs: features (..., F), labels (...)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64).reshape(-1, features.shape[-1])
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if len(np.unique(y)) < 2:
        raise ConfigError("the validation categories need both adopters and non-adopters to fit probabilities")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y)
    weights, bias = model.coef_[0], float(model.intercept_[0])
    logits = ((x - mean) / scale) @ weights + bias
    return AdoptionModel(mean, scale, weights, bias, fit_calibrator(logits, y, method))


def eligible_users(data: Dataset, min_history: int) -> np.ndarray:
    """Users with at least `min_history` distinct items in `data` (the ones a probability is given for)."""
    inter = data.interactions.drop_duplicates(["user", "item"])
    counts = np.bincount(inter["user"].to_numpy(), minlength=data.n_users)
    return np.flatnonzero(counts >= min_history).astype(np.int64)


def adoption_labels(
    data: Dataset, users: np.ndarray, level: int, categories: list[str] | tuple[str, ...]
) -> np.ndarray:
    """(n_users, n_categories) bool: did the user interact with an item of the category in `data`?"""
    col = {c: j for j, c in enumerate(categories)}
    item_col = np.asarray([col.get(c, -1) for c in data.category_at(level)], dtype=np.int64)
    row = np.full(data.n_users, -1, dtype=np.int64)
    row[np.asarray(users, dtype=np.int64)] = np.arange(len(users))
    inter_rows = row[data.interactions["user"].to_numpy()]
    inter_cols = item_col[data.interactions["item"].to_numpy()]
    keep = (inter_rows >= 0) & (inter_cols >= 0)
    out = np.zeros((len(users), len(categories)), dtype=bool)
    out[inter_rows[keep], inter_cols[keep]] = True
    return out


@dataclass
class CategoryAdoption:
    """A fitted scorer on the known data plus the calibrated model: P(user adopts category) on demand."""

    scorer: CategoryScorer
    model: AdoptionModel
    settings: AdoptionSettings
    validation: dict[str, object]  # what the calibration was fitted on (categories, pairs, positives)

    def probabilities(self, users: np.ndarray, categories: list[str] | tuple[str, ...]) -> np.ndarray:
        rows = self.scorer.category_rows(categories)
        return self.model.probabilities(self.scorer.features(users, rows))

    def text_probabilities(self, users: np.ndarray, vector: np.ndarray, n_items: int) -> np.ndarray:
        """(n_users,) P(adopt) of a category described by one text vector and an assumed item count."""
        feats = self.scorer.features(users, np.zeros(1, dtype=np.int64), vectors=vector[None, :], n_items=[n_items])
        return self.model.probabilities(feats)[:, 0]


def adoption_folds(data: Dataset, settings: AdoptionSettings) -> tuple[list[EvalSplit], int]:
    """The validation categories the calibration (and the forecast's choice of method) are fitted on: seeded
    draws of `data`'s active categories at `settings.level`; ConfigError where there are too few."""
    folds, level = validation_category_splits(
        data,
        level=settings.level,
        holdout_fraction=settings.validation_fraction,
        min_history=settings.min_history,
        min_users=1,
        n_folds=settings.validation_folds,
        seed=settings.seed,
    )
    if not folds:
        raise ConfigError(f"too few active categories at level {settings.level} to calibrate on (need at least 3)")
    return folds, level


def fit_category_adoption(
    data: Dataset, settings: AdoptionSettings, embeddings: EmbeddingSource | None = None
) -> CategoryAdoption:
    """Calibrate on validation categories carved from `data`, then score every category from all of `data`.

    Categories without interactions in `data` (the new ones) are never drawn for validation.
    """
    embeddings = embeddings or EmbeddingSource(settings.encoder)
    folds, level = adoption_folds(data, settings)
    feats, labels, cats = [], [], []
    for fold in folds:
        scorer = CategoryScorer(fold.train, level, embeddings)
        users = eligible_users(fold.train, settings.min_history)
        held = list(fold.heldout_categories)
        feats.append(scorer.features(users, scorer.category_rows(held)).reshape(-1, len(FEATURES)))
        labels.append(adoption_labels(data, users, level, held).reshape(-1))
        cats.extend(held)
    x, y = np.concatenate(feats), np.concatenate(labels)
    model = fit_adoption_model(x, y, settings.calibration)
    info = {"categories": sorted(set(cats)), "pairs": int(y.size), "adopters": int(y.sum()), "folds": len(folds)}
    return CategoryAdoption(CategoryScorer(data, level, embeddings), model, settings, info)
