"""Reference recommenders: random, popularity (and its leaking oracle), and TF-IDF content similarity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from zsrec.data.dataset import Dataset
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError, check_at_least
from zsrec.io import atomic_write_text
from zsrec.models.base import Recommender, append_item_ids, append_rows, history_counts, with_text_columns

#: at most this many users are scored through dense profiles (a serving request), more through sparse ones
FEW_USERS = 16
#: the fitted vocabulary and idf weights of a TF-IDF model (text, no pickle), so new items can be vectorised
VOCABULARY_FILE = "vocabulary.json"


@dataclass(frozen=True)
class RandomSettings:
    seed: int = 0  # seeds the per-(user, item) scores


class RandomRecommender(Recommender):
    """Scores every (user, item) pair with a seeded uniform draw: the floor every model must beat."""

    name = "random"

    def __init__(self, settings: RandomSettings | None = None) -> None:
        super().__init__(settings or RandomSettings())

    def fit(self, data: Dataset) -> Self:
        self._remember(data)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        # a deterministic draw per (user, item) pair, whatever the batch it comes in
        users = np.asarray(users, dtype=np.uint64)[:, None]
        items = np.asarray(items, dtype=np.uint64)[None, :]
        h = (users * np.uint64(0x9E3779B97F4A7C15)) ^ (items * np.uint64(0xC2B2AE3D27D4EB4F))
        h ^= np.uint64(self.settings.seed) * np.uint64(0x165667B19E3779F9)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
        return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    @classmethod
    def _settings_from_dict(cls, values: dict[str, Any] | None) -> RandomSettings:
        return RandomSettings(**(values or {}))


class PopularityRecommender(Recommender):
    """Ranks items by their number of training interactions.

    New items have none, so on a new category this is as good as random: that is the point of zsrec.
    """

    name = "popularity"
    _state = ("item_counts_",)

    def fit(self, data: Dataset) -> Self:
        self._remember(data)
        self.item_counts_ = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items).astype(np.float64)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.item_counts_[np.asarray(items)], (len(users), len(items))).copy()

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Add the events to the item counts (a new item's first purchases lift it at once) and the histories."""
        super().partial_fit(events)
        self.item_counts_ = self.item_counts_ + np.bincount(events["item"].to_numpy(), minlength=self.n_items_)
        return self


class PopularityOracle(PopularityRecommender):
    """Ranks items by how often the *test* users chose them: a leak, shown only as a reference ceiling."""

    name = "popularity-oracle"

    def __init__(self, settings: Any = None, *, test_counts: np.ndarray | None = None) -> None:
        super().__init__(settings)
        self._test_counts = test_counts

    def fit(self, data: Dataset) -> Self:
        if self._test_counts is None:
            raise ConfigError(
                "popularity-oracle needs the test interactions (test_counts=...); it exists only as a leak reference"
            )
        self._remember(data)
        self.item_counts_ = np.asarray(self._test_counts, dtype=np.float64)
        return self

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Only extend the histories: the counts already are the test interactions', so events add nothing."""
        return Recommender.partial_fit(self, events)


#: the text a shop's engineer gives a standard TF-IDF: title, brand and the whole description
FULL_TEXT = ItemTextTemplate(fields=("title", "brand", "description"), max_description_chars=None)


@dataclass(frozen=True)
class TfidfSettings:
    """A TF-IDF configured as users configure one: full text, English stop words, sublinear tf, min_df 2."""

    template: ItemTextTemplate = FULL_TEXT  # how item text is built
    min_df: int = 2  # ignore terms in fewer items than this
    stop_words: str | None = "english"  # scikit-learn's English stop-word list; None keeps every word
    max_features: int | None = 200_000  # vocabulary cap
    sublinear_tf: bool = True  # 1 + log(tf) instead of raw counts
    ngram_min: int = 1  # shortest n-gram
    ngram_max: int = 1  # longest n-gram: with analyzer "word", 2 adds word pairs
    analyzer: str = "word"  # "word", or "char_wb" (character n-grams inside words: part numbers, brands)

    def __post_init__(self) -> None:
        if self.analyzer not in ("word", "char_wb"):
            raise ConfigError(f"analyzer must be 'word' or 'char_wb', got {self.analyzer!r}")
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError(f"need 1 <= ngram_min <= ngram_max, got {self.ngram_min} and {self.ngram_max}")
        if self.stop_words not in (None, "english"):
            raise ConfigError(f"stop_words must be 'english' or None, got {self.stop_words!r}")
        check_at_least(self, min_df=1, ngram_max=1)


class TfidfRecommender(Recommender):
    """User profile = mean TF-IDF vector of the history items' texts; score = cosine to each candidate.

    The vocabulary is fitted on the whole catalog's text (new items included): reading text is allowed in
    zero-shot, learning from their interactions is not.
    """

    name = "tfidf"
    _state = ("item_data_", "item_indices_", "item_indptr_", "item_shape_")

    def __init__(self, settings: TfidfSettings | None = None) -> None:
        super().__init__(settings or TfidfSettings())

    _vectorizer: TfidfVectorizer | None = None

    def fit(self, data: Dataset) -> Self:
        self._remember(data)
        matrix, self._vectorizer = tfidf_fit(self.settings.template.render(data.items), self.settings)
        self._set_matrix(matrix)
        return self

    def _set_matrix(self, matrix: sparse.csr_matrix) -> None:
        self.item_data_, self.item_indices_, self.item_indptr_ = matrix.data, matrix.indices, matrix.indptr
        self.item_shape_ = np.asarray(matrix.shape, dtype=np.int64)
        self._matrix = None

    def add_items(self, items: pd.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
        """Append `items`, vectorised by the vocabulary and idf weights fitted on the training catalog (words
        it never saw count for nothing, as at fit); `vectors` is ignored (no encoder here)."""
        if self._vectorizer is None:
            raise ConfigError(
                f"this {self.name} model was saved without its TF-IDF vocabulary (an older zsrec); "
                "train it again to take new items"
            )
        items = with_text_columns(items)
        rows = self._vectorizer.transform(self.settings.template.render(items)).astype(np.float32).tocsr()
        new = append_item_ids(self, items)
        end = self.item_indptr_[-1]
        append_rows(self, "item_data_", rows.data.astype(self.item_data_.dtype))
        append_rows(self, "item_indices_", rows.indices.astype(self.item_indices_.dtype))
        append_rows(self, "item_indptr_", (rows.indptr[1:] + end).astype(self.item_indptr_.dtype))
        self.item_shape_ = np.asarray([self.n_items_, self.item_shape_[1]], dtype=np.int64)
        self._matrix = None
        return new

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        if self._vectorizer is not None:
            vocabulary = sorted(self._vectorizer.vocabulary_.items(), key=lambda kv: kv[1])
            values = {"terms": [term for term, _ in vocabulary], "idf": self._vectorizer.idf_.tolist()}
            atomic_write_text(Path(directory) / VOCABULARY_FILE, json.dumps(values, ensure_ascii=False))

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        model = super().load(directory)
        path = Path(directory) / VOCABULARY_FILE
        if path.is_file():
            values = json.loads(path.read_text(encoding="utf-8"))
            model._vectorizer = _vectorizer(model.settings, 1, vocabulary=values["terms"])
            model._vectorizer.idf_ = np.asarray(values["idf"], dtype=np.float64)
        return model

    @property
    def item_matrix(self) -> sparse.csr_matrix:
        if getattr(self, "_matrix", None) is None:
            self._matrix = sparse.csr_matrix(
                (self.item_data_, self.item_indices_, self.item_indptr_), shape=tuple(self.item_shape_)
            )
        return self._matrix

    def user_profiles(self, users: np.ndarray) -> sparse.csr_matrix:
        """Mean TF-IDF vector of each user's history, L2-normalised (all zeros for an empty history)."""
        profiles = history_counts(self.histories_, users, self.n_items_) @ self.item_matrix
        norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        return sparse.diags(1.0 / norms) @ profiles

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users, items = np.asarray(users), np.asarray(items)
        if len(users) <= FEW_USERS:  # a request's users: a dense profile times the items' rows is far cheaper
            return np.asarray(self.item_matrix[items] @ self._dense_profiles(users).T).T
        profiles = self.user_profiles(users)
        return np.asarray((profiles @ self.item_matrix[items].T).todense())

    def _dense_profiles(self, users: np.ndarray) -> np.ndarray:
        """`user_profiles` as a dense (len(users), vocabulary) array, from each history's rows alone."""
        out = np.zeros((len(users), int(self.item_shape_[1])), dtype=np.float32)
        for row, user in enumerate(users):
            history = self.histories_[int(user)]
            if len(history):
                distinct, counts = np.unique(history, return_counts=True)  # a repeated item counts each time
                out[row] = self.item_matrix[distinct].T @ counts.astype(np.float32)
                norm = float(np.linalg.norm(out[row]))
                if norm > 0:
                    out[row] /= norm
        return out

    @classmethod
    def _settings_from_dict(cls, values: dict[str, Any] | None) -> TfidfSettings:
        values = dict(values or {})
        values.setdefault("stop_words", None)  # folders saved before stop words existed were fitted without them
        if "template" in values:
            template = {k: v for k, v in values["template"].items() if k != "id"}
            values["template"] = ItemTextTemplate(**template)
        return TfidfSettings(**values)


def tfidf_matrix(texts: list[str], settings: TfidfSettings) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows of `texts` (see `tfidf_fit`)."""
    return tfidf_fit(texts, settings)[0]


def tfidf_fit(texts: list[str], settings: TfidfSettings) -> tuple[sparse.csr_matrix, TfidfVectorizer]:
    """L2-normalised TF-IDF rows of `texts` and the fitted vectoriser. A catalog too small for `min_df` (no term
    left) falls back to min_df 1 rather than failing: a tiny shop still gets a lexical model."""
    for min_df in dict.fromkeys((settings.min_df, 1)):
        vec = _vectorizer(settings, min_df)
        try:
            return vec.fit_transform(texts).tocsr(), vec
        except ValueError as err:  # "After pruning, no terms remain" / "empty vocabulary"
            if min_df == 1:
                raise ConfigError(f"no item text has a usable word for TF-IDF: {err}") from err
    raise ConfigError("unreachable: the min_df loop always returns or raises")


def _vectorizer(s: TfidfSettings, min_df: int, vocabulary: list[str] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        min_df=min_df,
        max_features=s.max_features,
        sublinear_tf=s.sublinear_tf,
        ngram_range=(s.ngram_min, s.ngram_max),
        analyzer=s.analyzer,
        stop_words=s.stop_words if s.analyzer == "word" else None,
        dtype=np.float32,
        vocabulary=vocabulary,
    )
