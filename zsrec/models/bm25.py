"""Lexical baseline: Okapi BM25 over item texts, queried with the bag of terms of a user's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from zsrec.data.dataset import Dataset
from zsrec.encoders.templates import ItemTextTemplate, with_item_template
from zsrec.errors import ConfigError
from zsrec.models.base import Recommender, history_counts

QUERY_WEIGHTINGS = ("count", "binary")


def _full_text_template() -> ItemTextTemplate:
    return ItemTextTemplate(fields=("title", "brand", "description"), max_description_chars=None)


@dataclass(frozen=True)
class Bm25Settings:
    k1: float = 1.2  # term-frequency saturation: higher lets repeated terms count for longer
    b: float = 0.75  # length normalisation: 0 = none, 1 = full (divide by length over the mean length)
    template: ItemTextTemplate = field(default_factory=_full_text_template)  # how item text is built
    min_df: int = 2  # ignore terms in fewer items than this
    stop_words: str | None = "english"  # scikit-learn's stop-word list, or None to keep every word
    lowercase: bool = True
    # query term weight: "count" = the term's counts summed over the history items' texts; "binary" = the
    # number of history items whose text has it (count read slightly better on a new category)
    query_weighting: str = "count"

    def __post_init__(self) -> None:
        if self.k1 < 0:
            raise ConfigError(f"k1 must be >= 0, got {self.k1}")
        if not 0.0 <= self.b <= 1.0:
            raise ConfigError(f"b must be in [0, 1], got {self.b}")
        if self.min_df < 1:
            raise ConfigError(f"min_df must be >= 1, got {self.min_df}")
        if self.stop_words not in (None, "english"):
            raise ConfigError(f"stop_words must be 'english' or None, got {self.stop_words!r}")
        if self.query_weighting not in QUERY_WEIGHTINGS:
            choices = ", ".join(QUERY_WEIGHTINGS)
            raise ConfigError(f"query_weighting must be one of {choices}, got {self.query_weighting!r}")


def bm25_weights(counts: sparse.csr_matrix, k1: float, b: float) -> sparse.csr_matrix:
    """BM25 weight of every (item, term) count: idf · tf (k1 + 1) / (tf + k1 (1 − b + b · len / mean len)).

    idf = ln(1 + (N − df + 0.5) / (df + 0.5)), the +1 keeping it positive for terms in over half the items.
    """
    counts = counts.tocsr().astype(np.float64)
    n_docs = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    mean_length = lengths.mean() if n_docs and lengths.mean() > 0 else 1.0
    norm = k1 * (1.0 - b + b * lengths / mean_length)  # per row
    tf = counts.data
    row_norm = np.repeat(norm, np.diff(counts.indptr))
    data = idf[counts.indices] * tf * (k1 + 1.0) / (tf + row_norm)
    return sparse.csr_matrix((data.astype(np.float32), counts.indices, counts.indptr), shape=counts.shape)


class Bm25Recommender(Recommender):
    """Score(user, item) = Σ over the user's query terms of query weight × the item's BM25 weight of the term.

    Items are BM25 documents; a user's query is the bag of terms of their history items' texts. The
    vocabulary and idf come from the whole catalog's text (new items included): reading text is allowed in
    zero-shot, learning from their interactions is not.
    """

    name = "bm25"
    _state = ("weight_data_", "count_data_", "term_indices_", "term_indptr_", "matrix_shape_")

    def __init__(self, settings: Bm25Settings | None = None) -> None:
        super().__init__(settings or Bm25Settings())

    def fit(self, data: Dataset) -> Self:
        self._remember(data)
        s = self.settings
        texts = s.template.render(data.items)
        vec = CountVectorizer(min_df=s.min_df, stop_words=s.stop_words, lowercase=s.lowercase, dtype=np.int64)
        try:
            counts = vec.fit_transform(texts).tocsr()
        except ValueError as exc:  # scikit-learn's "empty vocabulary" on a tiny or text-less catalog
            raise ConfigError(f"bm25 found no terms in the item texts with min_df={s.min_df}: {exc}") from exc
        counts.sort_indices()
        weights = bm25_weights(counts, s.k1, s.b)
        self.weight_data_, self.count_data_ = weights.data, counts.data.astype(np.float32)
        self.term_indices_, self.term_indptr_ = counts.indices, counts.indptr
        self.matrix_shape_ = np.asarray(counts.shape, dtype=np.int64)
        self._matrices = None
        return self

    def _item_matrices(self) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """(BM25 weights, query term weights per item), both items × terms."""
        if getattr(self, "_matrices", None) is None:
            shape = tuple(int(n) for n in self.matrix_shape_)
            parts = (self.term_indices_, self.term_indptr_)
            query = self.count_data_ if self.settings.query_weighting == "count" else np.ones_like(self.count_data_)
            self._matrices = (
                sparse.csr_matrix((self.weight_data_, *parts), shape=shape),
                sparse.csr_matrix((query, *parts), shape=shape),
            )
        return self._matrices

    def queries(self, users: np.ndarray) -> sparse.csr_matrix:
        """Query term weights per user (users × terms): their history items' rows summed."""
        return history_counts(self.histories_, users, self.n_items_) @ self._item_matrices()[1]

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        weights = self._item_matrices()[0]
        return np.asarray((self.queries(np.asarray(users)) @ weights[np.asarray(items)].T).todense())

    @classmethod
    def _settings_from_dict(cls, values: dict[str, Any] | None) -> Bm25Settings:
        return Bm25Settings(**with_item_template(values))
