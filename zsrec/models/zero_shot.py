"""Zero-shot recommenders: match a user's history (and profile text) to new items by their text embeddings.

Nothing here learns from interactions: the only inputs are pretrained text embeddings of the catalog and of
user profiles, plus each user's own history. One `ZeroShotRecommender` covers every variant; the named
models (`zero-shot-mean`, `-recency`, `-multi`, `-profile`, `category-affinity`) are presets of its settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from zsrec.data.dataset import Dataset
from zsrec.encoders.templates import ItemTextTemplate, UserTextTemplate
from zsrec.errors import ConfigError, check_at_least, check_choice, check_positive
from zsrec.io import load_arrays, save_arrays
from zsrec.models.base import (
    Recommender,
    append_item_ids,
    append_rows,
    append_users_with_profiles,
    standardise_against,
    with_text_columns,
)
from zsrec.models.baselines import TfidfRecommender, TfidfSettings
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.interests import interest_clusters, postprocess_embeddings
from zsrec.vectors import catalog_mean, history_weights, l2_normalize, recentre, standardise

CATEGORY_SEP = " > "

AGGREGATIONS = ("mean", "recency", "multi")
POSTPROCESS = ("none", "center", "whiten")


WORD_TFIDF = TfidfSettings(ngram_max=2, min_df=2)
CHAR_TFIDF = TfidfSettings(
    template=ItemTextTemplate(fields=("title", "brand")), analyzer="char_wb", ngram_min=3, ngram_max=5, min_df=2
)


@dataclass(frozen=True)
class ZeroShotSettings:
    """How a user's history and profile become scores for items they have never seen.

    The score is a weighted sum of per-user standardised parts; a weight of 0 switches a part off.
    """

    encoder: str = "minilm"  # encoder spec: "minilm", "e5-multilingual", a local folder or a model name
    template: ItemTextTemplate = field(default_factory=ItemTextTemplate)  # item text for the encoder
    user_template: UserTextTemplate = field(default_factory=UserTextTemplate)  # user profile text
    aggregation: str = "mean"  # "mean", "recency" (recency-weighted mean) or "multi" (several interests)
    half_life: float = 5.0  # recency: an event this many events old counts half as much as the latest
    n_interests: int = 4  # multi: at most this many interest clusters per user
    interest_temperature: float = 0.05  # multi: soft-max over interests; 0 = hard max
    profile_weight: float = 0.0  # inside the semantic part: weight of the profile-text cosine
    postprocess: str = "none"  # item embedding post-processing: "none", "center" or "whiten"
    whiten_dims: int = 128  # whiten: keep this many principal directions
    semantic_weight: float = 1.0  # weight of the language-model part
    lexical_weight: float = 0.0  # weight of word TF-IDF similarity (`lexical`)
    lexical: TfidfSettings = WORD_TFIDF  # the word TF-IDF part
    char_weight: float = 0.0  # weight of character n-gram TF-IDF similarity on title and brand (`char`)
    char: TfidfSettings = CHAR_TFIDF  # the character n-gram part
    category_weight: float = 0.0  # weight of the user's affinity to the item's category
    category_level: int | None = None  # category level for the affinity; None = each item's full path

    def __post_init__(self) -> None:
        check_choice(self, "aggregation", AGGREGATIONS)
        check_choice(self, "postprocess", POSTPROCESS)
        check_positive(self, "half_life")
        check_at_least(self, n_interests=1, interest_temperature=0)
        weights = ("profile_weight", "semantic_weight", "lexical_weight", "char_weight", "category_weight")
        check_at_least(self, **dict.fromkeys(weights, 0))
        if self.semantic_weight + self.lexical_weight + self.char_weight + self.category_weight == 0:
            raise ConfigError(
                "at least one of semantic_weight, lexical_weight, char_weight, category_weight must be > 0"
            )
        check_at_least(self, whiten_dims=1)
        if self.category_level is not None and self.category_level < 1:
            raise ConfigError(f"category_level must be >= 1 or None, got {self.category_level}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ZeroShotSettings:
        values = dict(values)
        values["template"] = _template_from_dict(ItemTextTemplate, values.get("template", {}))
        values["user_template"] = _template_from_dict(UserTextTemplate, values.get("user_template", {}))
        for part in ("lexical", "char"):
            if part in values:
                values[part] = TfidfRecommender._settings_from_dict(values[part])
        return cls(**values)


class ZeroShotRecommender(Recommender):
    """score = Σ_part weight·z(part) over semantic, lexical, char and category parts; no training.

    - semantic(u, i): cosine between item i's text embedding and the user's history vector (mean,
      recency-weighted mean, or the soft-max over several interest clusters), plus `profile_weight` times
      the cosine to the user's profile-text embedding;
    - lexical(u, i) / char(u, i): cosine between the mean TF-IDF vector of the history and item i's, over
      words and word pairs / character 3-5-grams of title and brand (part numbers, brand spellings);
    - category(u, i): cosine between the user vector and the centroid of item i's category.
    z() standardises each part over each user's candidates, because the parts live on different scales
    (on Amazon Scientific the standardised sum of semantic and lexical scored better than the raw sum).
    """

    name = "zero-shot-custom"
    settings_class = ZeroShotSettings
    _state = ("item_vectors_", "profile_vectors_", "category_index_", "category_vectors_")

    def __init__(self, settings: ZeroShotSettings | None = None, *, embeddings: EmbeddingSource | None = None) -> None:
        super().__init__(settings or ZeroShotSettings())
        self._embeddings = embeddings
        self._lexical: dict[str, TfidfRecommender] = {}

    @property
    def embeddings(self) -> EmbeddingSource:
        if self._embeddings is None:
            self._embeddings = EmbeddingSource(self.settings.encoder)
        return self._embeddings

    def fit(self, data: Dataset) -> Self:
        self._remember(data)
        s = self.settings
        raw = self.embeddings.items(data.items, s.template)
        self.item_vectors_ = postprocess_embeddings(raw, s.postprocess, whiten_dims=s.whiten_dims)
        # what centring subtracted, so that items added later are centred the same way (zeros: no centring)
        self.catalog_mean_ = catalog_mean(raw) if s.postprocess == "center" else np.zeros(raw.shape[1], np.float32)
        self._category_names: list[str] | None = None
        if s.profile_weight > 0:
            self.profile_vectors_ = self.embeddings.users(data.users, s.user_template)
        else:
            self.profile_vectors_ = np.zeros((0, self.item_vectors_.shape[1]), dtype=np.float32)
        categories = data.category_at(s.category_level) if s.category_level else data.items["category"].to_numpy()
        names, self.category_index_ = np.unique(categories.astype(str), return_inverse=True)
        self.category_vectors_ = _category_centroids(self.item_vectors_, self.category_index_, len(names))
        self._lexical = {
            part: TfidfRecommender(getattr(s, part)).fit(data)
            for part in ("lexical", "char")
            if getattr(s, f"{part}_weight") > 0
        }
        self._share_histories()
        return self

    def _share_histories(self) -> None:
        """The lexical parts read the same history list, so events folded in later reach them too."""
        for model in self._lexical.values():
            model.histories_ = self.histories_

    # -- scoring -----------------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        parts = self.components(users, items)
        return sum(getattr(self.settings, f"{part}_weight") * standardise(x) for part, x in parts.items())

    def score_against(self, users: np.ndarray, items: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """`score`, each part standardised over `reference` instead of `items` (see `ScoresAgainstReference`)."""
        self._check_fitted()
        items, reference = np.asarray(items, dtype=np.int64), np.asarray(reference, dtype=np.int64)
        both = self.components(users, np.concatenate([items, reference]))  # one pass: user vectors and profiles once
        s, n = self.settings, len(items)
        return sum(getattr(s, f"{part}_weight") * standardise_against(x[:, :n], x[:, n:]) for part, x in both.items())

    def components(self, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        """The raw parts with a non-zero weight, each (len(users), len(items)): semantic, lexical, char, category."""
        s = self.settings
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        everything = len(items) == len(self.item_vectors_) and bool(np.all(items == np.arange(len(items))))
        # the whole catalog (batch scoring): the (memory-mapped) vectors as they are, not a copy per call
        cand = self.item_vectors_ if everything else self.item_vectors_[items]
        parts = {}
        if s.semantic_weight > 0:
            semantic = self._history_scores(users, cand)
            if s.profile_weight > 0 and len(self.profile_vectors_):
                semantic += s.profile_weight * (self.profile_vectors_[users] @ cand.T)
            parts["semantic"] = semantic
        for part, model in self._lexical.items():
            parts[part] = model.score(users, items)
        if s.category_weight > 0:
            affinity = self.user_vectors(users) @ self.category_vectors_.T
            parts["category"] = affinity[:, self.category_index_[items]]
        return parts

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """One L2-normalised vector per user: the (recency-weighted) mean of their history's item vectors."""
        out = np.zeros((len(users), self.item_vectors_.shape[1]), dtype=np.float32)
        for row, u in enumerate(users):
            h = self.histories_[int(u)]
            if len(h):
                w = self._history_weights(len(h))
                out[row] = w @ self.item_vectors_[h]
        return l2_normalize(out)

    def _history_weights(self, n: int) -> np.ndarray:
        return history_weights(n, self.settings.aggregation, self.settings.half_life)

    def _history_scores(self, users: np.ndarray, cand: np.ndarray) -> np.ndarray:
        if self.settings.aggregation != "multi":
            return self.user_vectors(users) @ cand.T
        # several interests: cluster each history, score = soft-max over the clusters' similarities
        centroids, weights, owner = [], [], []
        for row, u in enumerate(users):
            h = self.histories_[int(u)]
            if len(h) == 0:
                continue
            c, w = interest_clusters(self.item_vectors_[h], self.settings.n_interests)
            centroids.append(c)
            weights.append(w)
            owner.append(np.full(len(c), row))
        out = np.zeros((len(users), len(cand)), dtype=np.float32)
        if not centroids:
            return out
        sims = np.concatenate(centroids) @ cand.T  # (total clusters, n_cand)
        w_all, owner_all = np.concatenate(weights), np.concatenate(owner)
        tau = self.settings.interest_temperature
        bounds = np.flatnonzero(np.diff(owner_all)) + 1
        for chunk, w, rows in zip(
            np.split(sims, bounds), np.split(w_all, bounds), np.split(owner_all, bounds), strict=True
        ):
            if tau == 0:
                out[rows[0]] = chunk.max(axis=0)
            else:  # tau·log Σ_c w_c exp(s_c / tau): a size-weighted soft maximum
                m = chunk.max(axis=0)
                out[rows[0]] = m + tau * np.log((w[:, None] * np.exp((chunk - m) / tau)).sum(axis=0))
        return out

    # -- a live catalog ----------------------------------------------------------------------------------
    def add_items(self, items: pd.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
        """Append `items` with every part: their embeddings post-processed as the training catalog's were, their
        text through the fitted TF-IDF vocabularies, and the category centroids they join recomputed (a new
        category gets its own). See `AcceptsNewItems`."""
        items = with_text_columns(items)
        self._check_fitted()
        s = self.settings
        if s.postprocess == "whiten":
            raise ConfigError("a whitened zero-shot model cannot take new items (its projection is not kept)")
        mean = getattr(self, "catalog_mean_", None)
        if s.postprocess == "center" and mean is None:
            raise ConfigError(
                "this centred zero-shot model was saved without its catalog mean (an older zsrec); "
                "train it again to take new items"
            )
        raw = self.embeddings.items(items, s.template) if vectors is None else np.asarray(vectors, np.float32)
        fresh = l2_normalize(raw if mean is None else recentre(raw, np.asarray(mean, dtype=np.float32)))
        names = self._names()
        paths = items["category"].fillna("").astype(str).to_numpy() if "category" in items else np.full(len(items), "")
        cut = _cut(paths, s.category_level)
        position = {name: c for c, name in enumerate(names)}
        for name in cut:
            if name not in position:
                position[name] = len(names)
                names.append(name)
        codes = np.asarray([position[name] for name in cut], dtype=self.category_index_.dtype)
        for model in self._lexical.values():
            model.add_items(items)
        new = append_item_ids(self, items)
        append_rows(self, "item_vectors_", fresh)
        append_rows(self, "category_index_", codes)
        self._update_centroids(np.unique(codes), len(names))
        return new

    def add_users(self, user_ids: list[str]) -> np.ndarray:
        """Append users with empty histories and empty profiles (see `AcceptsNewItems`)."""
        new = append_users_with_profiles(self, user_ids)
        for model in self._lexical.values():
            model.n_users_, model.ids_ = self.n_users_, self.ids_
        return new

    def _names(self) -> list[str]:
        """The category names behind `category_index_` (sorted at fit, then in order of arrival)."""
        if getattr(self, "_category_names", None) is None:
            assert self.ids_ is not None  # checked by append_item_ids' caller path before any use
            fitted = self.ids_.categories[: len(self.category_index_)].astype(str)
            self._category_names = np.unique(_cut(fitted, self.settings.category_level)).tolist()
        assert self._category_names is not None
        return self._category_names

    def _update_centroids(self, codes: np.ndarray, n_names: int) -> None:
        if n_names > len(self.category_vectors_):
            grow = np.zeros((n_names - len(self.category_vectors_), self.item_vectors_.shape[1]), dtype=np.float32)
            self.category_vectors_ = np.vstack([self.category_vectors_, grow])
        for code in codes.tolist():
            members = self.item_vectors_[self.category_index_ == code]
            self.category_vectors_[code] = l2_normalize(members.sum(axis=0, keepdims=True))[0]

    # -- explanations ------------------------------------------------------------------------------------
    def explain(self, user: int, items: np.ndarray, top: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, the user's history items that contributed most: (history item index, cosine)."""
        self._check_fitted()
        h = self.histories_[int(user)]
        if len(h) == 0:
            return [[] for _ in items]
        sims = self.item_vectors_[np.asarray(items)] @ self.item_vectors_[h].T  # (n_items, len(h))
        order = np.argsort(-sims, axis=1)[:, :top]
        return [[(int(h[j]), float(sims[r, j])) for j in order[r]] for r in range(len(items))]

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"settings": self.settings.to_dict()}

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        if getattr(self, "catalog_mean_", None) is not None:
            save_arrays(directory, {"catalog_mean_": self.catalog_mean_})
        for part, model in self._lexical.items():
            model.save(Path(directory) / part)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        model = super().load(directory)
        model._lexical = {
            part: TfidfRecommender.load(Path(directory) / part)
            for part in ("lexical", "char")
            if getattr(model.settings, f"{part}_weight") > 0
        }
        model._share_histories()
        for part in model._lexical.values():  # one copy of the catalog's ids, not three (1M items: ~300 MB)
            part.ids_ = model.ids_
        # folders written before the catalog mean was kept load without it (they cannot take new items)
        has_mean = (Path(directory) / "catalog_mean_.npy").is_file()
        model.catalog_mean_ = load_arrays(directory, ["catalog_mean_"])["catalog_mean_"] if has_mean else None
        if not has_mean and model.settings.postprocess == "none":
            model.catalog_mean_ = np.zeros(model.item_vectors_.shape[1], dtype=np.float32)
        model._category_names = None
        return model

    @classmethod
    def loadable_names(cls) -> tuple[str, ...]:
        return (cls.name, *PRESETS, "zero-shot")


def _template_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a template dataclass from JSON (lists back to tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k != "id"})


def _cut(paths: np.ndarray, level: int | None) -> np.ndarray:
    """Category paths cut to `level` levels as `Dataset.category_at` cuts them; the full path for None."""
    if level is None:
        return np.asarray(paths, dtype=str)
    cut = []
    for path in paths:
        parts = str(path).split(CATEGORY_SEP)
        cut.append(CATEGORY_SEP.join(parts[:level]) if len(parts) >= level and parts[0] != "" else "")
    return np.asarray(cut, dtype=str)


def _category_centroids(vectors: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    sums = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    np.add.at(sums, index, vectors)
    return l2_normalize(sums)


# The named zero-shot models: presets of ZeroShotSettings.
PRESETS: dict[str, dict[str, Any]] = {
    "zero-shot-mean": {"aggregation": "mean"},
    "zero-shot-recency": {"aggregation": "recency"},
    "zero-shot-multi": {"aggregation": "multi"},
    "zero-shot-profile": {"aggregation": "mean", "profile_weight": 0.5},
    "zero-shot-hybrid": {
        "aggregation": "mean",
        "postprocess": "center",
        "lexical_weight": 1.0,
        "char_weight": 1.0,
        "category_weight": 0.5,
    },
    "category-affinity": {"semantic_weight": 0.0, "category_weight": 1.0},
}


def preset(name: str, base: ZeroShotSettings | None = None) -> ZeroShotSettings:
    if name not in PRESETS:
        raise ConfigError(f"unknown zero-shot preset {name!r}; known: {sorted(PRESETS)}")
    return replace(base or ZeroShotSettings(), **PRESETS[name])
