"""`launch-ranker`: the new-category model, at launch and as the category's first purchases arrive.

At launch nothing is known about a new item but its text, so the score is a robust, nearly equal fusion of
per-user standardised parts that each read the text differently:
- `lexical`: a standard word TF-IDF (full text, English stop words) between the user's history and the item;
- `char`: character 3-5-grams of title and brand (part numbers, brand spellings);
- `semantic`: the pretrained encoder's cosine, item vectors centred by the catalog mean;
- `bridge`: collaborative evidence carried over by text: the mean normalised co-occurrence, over the warm
  interactions, between the user's history and the item's text-nearest warm items;
- `category`: the user's affinity to the item's category centroid (off by default).
Learned weights over such parts memorise the launches they were fitted on; equal weights transfer.

As purchases arrive (`partial_fit(events)`, no retraining):
- each new item gets a `popularity` part: its revealed count, pulled towards a text prior (the popularity of
  its text-nearest warm items) by a pseudo-count, on a log scale;
- each new category's part weights move from the equal prior towards how well each part ranks that
  category's revealed purchases (leave-one-out for popularity), by a pseudo-count of purchases.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import sparse

from zsrec.data.dataset import Dataset
from zsrec.encoders.base import l2_normalize
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.models.base import Recommender
from zsrec.models.baselines import TfidfRecommender, TfidfSettings
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.interests import postprocess_embeddings
from zsrec.models.zero_shot import CHAR_TFIDF, standardise

#: the parts in the order of the weight matrix's columns
PARTS = ("semantic", "lexical", "char", "bridge", "category", "popularity")
TEXT_PARTS = PARTS[:-1]


@dataclass(frozen=True)
class LaunchSettings:
    """The launch ranker's parts, their prior weights, and how fast revealed purchases move them."""

    encoder: str = "minilm"  # encoder spec for the semantic part
    template: ItemTextTemplate = field(default_factory=ItemTextTemplate)  # item text for the encoder
    lexical: TfidfSettings = field(default_factory=TfidfSettings)  # the standard word TF-IDF
    char: TfidfSettings = CHAR_TFIDF  # character n-grams of title and brand
    semantic_weight: float = 1.0
    lexical_weight: float = 1.0
    char_weight: float = 1.0
    bridge_weight: float = 1.0
    category_weight: float = 0.0
    neighbours: int = 20  # text-nearest warm items behind a cold item's bridge and popularity prior
    # revealed events at which an item's own count weighs as much as its text prior
    prior_events: float = 5.0
    # revealed purchases of a category at which their evidence weighs as much as the equal prior weights
    evidence_purchases: float = 20.0
    # largest weight a part can earn from revealed purchases (a text part's prior weight is 1)
    max_weight: float = 4.0
    # the category level whose categories launch together (their parts are re-weighted together);
    # None = each item's full category path
    category_level: int | None = None

    def __post_init__(self) -> None:
        for part in TEXT_PARTS:
            if getattr(self, f"{part}_weight") < 0:
                raise ConfigError(f"{part}_weight must be >= 0, got {getattr(self, f'{part}_weight')}")
        if sum(getattr(self, f"{part}_weight") for part in TEXT_PARTS) <= 0:
            raise ConfigError("at least one of the launch ranker's part weights must be > 0")
        if self.neighbours < 1:
            raise ConfigError(f"neighbours must be >= 1, got {self.neighbours}")
        for name in ("prior_events", "evidence_purchases", "max_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.category_level is not None and self.category_level < 1:
            raise ConfigError(f"category_level must be >= 1 or None, got {self.category_level}")

    @property
    def prior_weights(self) -> np.ndarray:
        """Each part's weight before any purchase is revealed (popularity: 0)."""
        return np.asarray([getattr(self, f"{p}_weight") for p in TEXT_PARTS] + [0.0], dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LaunchSettings:
        values = dict(values)
        template = {k: tuple(v) if isinstance(v, list) else v for k, v in values.get("template", {}).items()}
        values["template"] = ItemTextTemplate.from_dict(template)
        for part in ("lexical", "char"):
            if part in values:
                values[part] = TfidfRecommender._settings_from_dict(values[part])
        return cls(**values)


class LaunchRanker(Recommender):
    """score(u, i) = Σ_part w[category(i), part] · z_u(part(u, i)), z standardised over each user's candidates."""

    name = "launch-ranker"
    _state = (
        "item_vectors_",
        "category_index_",
        "category_vectors_",
        "fit_counts_",
        "revealed_counts_",
        "prior_log_counts_",
        "weights_",
        "cooc_data_",
        "cooc_indices_",
        "cooc_indptr_",
        "neigh_data_",
        "neigh_indices_",
        "neigh_indptr_",
        "revealed_users_",
        "revealed_items_",
    )

    def __init__(self, settings: LaunchSettings | None = None, *, embeddings: EmbeddingSource | None = None) -> None:
        super().__init__(settings or LaunchSettings())
        self._embeddings = embeddings
        self._lexical: dict[str, TfidfRecommender] = {}

    @property
    def embeddings(self) -> EmbeddingSource:
        if self._embeddings is None:
            self._embeddings = EmbeddingSource(self.settings.encoder)
        return self._embeddings

    # -- fitting -----------------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> Self:
        self._remember(data)
        s = self.settings
        raw = self.embeddings.items(data.items, s.template)
        self.item_vectors_ = postprocess_embeddings(raw, "center")
        self._lexical = {part: TfidfRecommender(getattr(s, part)).fit(data) for part in ("lexical", "char")}
        categories = data.category_at(s.category_level) if s.category_level else data.items["category"].to_numpy()
        self.category_names_, self.category_index_ = np.unique(categories.astype(str), return_inverse=True)
        sums = np.zeros((len(self.category_names_), self.item_vectors_.shape[1]), dtype=np.float32)
        np.add.at(sums, self.category_index_, self.item_vectors_)
        self.category_vectors_ = l2_normalize(sums)
        interactions = _user_item_matrix(data.interactions, data.n_users, data.n_items)
        self.fit_counts_ = np.asarray(interactions.sum(axis=0), dtype=np.float32).ravel()
        cooc = _normalised_cooccurrence(interactions, self.fit_counts_)
        neigh = self._text_neighbours(self.fit_counts_ > 0)
        self.cooc_data_, self.cooc_indices_, self.cooc_indptr_ = cooc.data, cooc.indices, cooc.indptr
        self.neigh_data_, self.neigh_indices_, self.neigh_indptr_ = neigh.data, neigh.indices, neigh.indptr
        self.prior_log_counts_ = np.asarray(neigh @ np.log1p(self.fit_counts_), dtype=np.float32).ravel()
        self.revealed_counts_ = np.zeros(data.n_items, dtype=np.float32)
        self.weights_ = np.tile(s.prior_weights, (len(self.category_names_), 1))
        self.revealed_users_ = np.zeros(0, dtype=np.int64)
        self.revealed_items_ = np.zeros(0, dtype=np.int64)
        self._cache = {}
        return self

    # -- as purchases arrive -----------------------------------------------------------------------------
    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Fold in new events (int columns `user`, `item`, in time order): histories grow, revealed counts rise,
        and every category whose cold items got events has its part weights estimated again. No training."""
        self._check_fitted()
        users, items = event_arrays(events, self.n_users_, self.n_items_)
        fresh = append_to_histories(self.histories_, users, items)
        users, items = users[fresh], items[fresh]
        np.add.at(self.revealed_counts_, items, 1.0)
        self.revealed_users_ = np.concatenate([self.revealed_users_, users])
        self.revealed_items_ = np.concatenate([self.revealed_items_, items])
        cold = self.fit_counts_ <= 0
        for category in np.unique(self.category_index_[items[cold[items]]]):
            self.weights_[category] = self._category_weights(int(category))
        return self

    def _category_weights(self, category: int) -> np.ndarray:
        """The parts' weights for one category: the prior weights moved towards each part's ranking quality on
        the category's revealed purchases, by `evidence_purchases` pseudo-purchases.

        Quality is the mean AUC of each bought item among the category's cold items, for its buyer, with the
        category's cold items left out of the buyer's history (popularity: without the buyer's own event).
        A part's earned weight is its AUC edge over 0.5 relative to the mean edge of the prior-weighted parts.
        """
        s, prior = self.settings, self.settings.prior_weights
        cold = self.fit_counts_ <= 0
        members = np.flatnonzero((self.category_index_ == category) & cold)
        bought = np.isin(self.revealed_items_, members)
        n = int(bought.sum())
        if n == 0 or len(members) < 2:
            return prior
        buyers, row = np.unique(self.revealed_users_[bought], return_inverse=True)
        col = np.searchsorted(members, self.revealed_items_[bought])
        scores = self.components(buyers, members, parts=TEXT_PARTS, history_mask=~cold)
        quality = [_mean_auc(scores[p], row, col) for p in TEXT_PARTS]
        own = self.popularity(members[col], minus=np.ones(n, dtype=np.float32))
        quality.append(_mean_auc(np.tile(self.popularity(members), (n, 1)), np.arange(n), col, own=own))
        edge = np.maximum(np.asarray(quality, dtype=np.float32) - 0.5, 0.0)
        reference = edge[prior > 0].mean()
        earned = np.minimum(edge / reference, s.max_weight) if reference > 0 else np.zeros_like(edge)
        return ((s.evidence_purchases * prior + n * earned) / (s.evidence_purchases + n)).astype(np.float32)

    def _text_neighbours(self, warm: np.ndarray) -> sparse.csr_matrix:
        """Row i: weight 1 on item i itself when it is warm, else 1/K on its K TF-IDF-nearest warm items."""
        n, k = len(warm), self.settings.neighbours
        warm_idx, cold_idx = np.flatnonzero(warm), np.flatnonzero(~warm)
        rows, cols, vals = [warm_idx], [warm_idx], [np.ones(len(warm_idx), dtype=np.float32)]
        if len(warm_idx) and len(cold_idx):
            k = min(k, len(warm_idx))
            matrix = self._lexical["lexical"].item_matrix
            warm_rows = matrix[warm_idx].T.tocsc()
            for start in range(0, len(cold_idx), 512):
                chunk = cold_idx[start : start + 512]
                sims = np.asarray((matrix[chunk] @ warm_rows).todense())
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
                rows.append(np.repeat(chunk, k))
                cols.append(warm_idx[top].ravel())
                vals.append(np.full(len(chunk) * k, 1.0 / k, dtype=np.float32))
        return sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32
        )

    # -- explanations, persistence ----------------------------------------------------------------------
    def explain(self, user: int, items: np.ndarray, top: int = 3) -> list[dict[str, Any]]:
        """Per item: each part's weighted, standardised contribution to the score; the history items closest
        in text; and the item's revealed purchases (events, and the item's popularity estimate)."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        candidates = np.arange(self.n_items_)
        parts = self.components(np.asarray([user]), candidates)
        weights = self.weights_[self.category_index_]
        total = np.maximum(weights.sum(axis=1), 1e-9)
        history = self.histories_[int(user)]
        sims = self.item_vectors_[items] @ self.item_vectors_[history].T if len(history) else None
        out = []
        for row, item in enumerate(items.tolist()):
            contributions = {
                part: float(standardise(values)[0, item] * weights[item, PARTS.index(part)] / total[item])
                for part, values in parts.items()
            }
            closest = []
            if sims is not None:
                order = np.argsort(-sims[row])[:top]
                closest = [(int(history[j]), float(sims[row, j])) for j in order]
            out.append(
                {
                    "item": item,
                    "contributions": contributions,
                    "history": closest,
                    "revealed_events": int(self.revealed_counts_[item]),
                }
            )
        return out

    def get_config(self) -> dict[str, Any]:
        config = super().get_config() | {"settings": self.settings.to_dict()}
        if hasattr(self, "category_names_"):
            config["categories"] = [str(c) for c in self.category_names_]
        return config

    @classmethod
    def _settings_from_dict(cls, values: dict[str, Any] | None) -> LaunchSettings:
        return LaunchSettings.from_dict(values or {})

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        for part, model in self._lexical.items():
            model.save(Path(directory) / part)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        model = super().load(directory)
        config = json.loads((Path(directory) / "config.json").read_text())
        model.category_names_ = np.asarray(config.get("categories", []), dtype=object)
        model._lexical = {part: TfidfRecommender.load(Path(directory) / part) for part in ("lexical", "char")}
        model._cache = {}
        return model

    # -- scoring -----------------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        parts = self.components(users, items)
        weights = self.weights_[self.category_index_[items]]  # (n_items, n_parts)
        total = np.zeros((len(users), len(items)), dtype=np.float32)
        for part, values in parts.items():
            total += standardise(values) * weights[:, PARTS.index(part)][None, :]
        return total / np.maximum(weights.sum(axis=1), 1e-9)[None, :]

    def components(
        self,
        users: np.ndarray,
        items: np.ndarray,
        *,
        parts: tuple[str, ...] | None = None,
        history_mask: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Raw part scores, each (len(users), len(items)): `parts`, default those with weight among `items`.

        `history_mask` (per item, True = keep) leaves items out of the histories, e.g. the purchases a
        re-weighting is judged on.
        """
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        if parts is None:
            active = self.weights_[self.category_index_[items]].max(axis=0) > 0
        else:
            active = np.isin(PARTS, parts)
        history = self._history_matrix(users, history_mask)
        parts: dict[str, np.ndarray] = {}
        if active[PARTS.index("semantic")] or active[PARTS.index("category")]:
            user_vectors = l2_normalize(np.asarray(history @ self.item_vectors_, dtype=np.float32))
            if active[PARTS.index("semantic")]:
                parts["semantic"] = user_vectors @ self.item_vectors_[items].T
            if active[PARTS.index("category")]:
                parts["category"] = (user_vectors @ self.category_vectors_.T)[:, self.category_index_[items]]
        for part in ("lexical", "char"):
            if active[PARTS.index(part)]:
                parts[part] = _profile_cosine(history, self._lexical[part].item_matrix, items)
        if active[PARTS.index("bridge")]:
            reach = sparse.csr_matrix(history @ self._cooc)  # (users, n_items): co-occurrence with the history
            parts["bridge"] = np.asarray((reach @ self._neigh[items].T).todense(), dtype=np.float32)
        if active[PARTS.index("popularity")]:
            parts["popularity"] = np.broadcast_to(self.popularity(items), (len(users), len(items))).copy()
        return parts

    def popularity(self, items: np.ndarray, *, minus: np.ndarray | None = None) -> np.ndarray:
        """Log of each item's shrunken event count.

        An item cold at fit: its revealed events plus `prior_events` pseudo-events per cold item, spread over
        the cold items in proportion to their text prior (so the average cold item gets `prior_events`). A warm
        item: its fit count plus its revealed events. `minus` (one value per item) is taken off the revealed
        counts first (leave-one-out)."""
        items = np.asarray(items, dtype=np.int64)
        revealed = self.revealed_counts_[items] - (0.0 if minus is None else np.asarray(minus, dtype=np.float32))
        cold = self.fit_counts_ <= 0
        prior = np.exp(self.prior_log_counts_ - self.prior_log_counts_[cold].max(initial=0.0))
        share = prior[items] / max(float(prior[cold].sum()), 1e-12)
        pseudo = self.settings.prior_events * float(cold.sum()) * share
        estimate = np.where(cold[items], revealed + pseudo, self.fit_counts_[items] + revealed)
        return np.log(np.maximum(estimate, 0.0) + 1e-3).astype(np.float32)

    def _history_matrix(self, users: np.ndarray, keep: np.ndarray | None) -> sparse.csr_matrix:
        """(len(users), n_items): each user's history as weights 1/len (kept items only)."""
        rows, cols = [], []
        for row, u in enumerate(users):
            h = self.histories_[int(u)]
            if keep is not None:
                h = h[keep[h]]
            rows.append(np.full(len(h), row))
            cols.append(h)
        r, c = (np.concatenate(rows), np.concatenate(cols)) if rows else (np.zeros(0, int), np.zeros(0, int))
        counts = np.bincount(r, minlength=len(users)).astype(np.float32)
        vals = 1.0 / counts[r] if len(r) else np.zeros(0, dtype=np.float32)
        return sparse.csr_matrix((vals, (r, c)), shape=(len(users), self.n_items_), dtype=np.float32)

    @property
    def _cooc(self) -> sparse.csr_matrix:
        if "cooc" not in self._cache:
            shape = (self.n_items_, self.n_items_)
            self._cache["cooc"] = sparse.csr_matrix((self.cooc_data_, self.cooc_indices_, self.cooc_indptr_), shape)
        return self._cache["cooc"]

    @property
    def _neigh(self) -> sparse.csr_matrix:
        if "neigh" not in self._cache:
            shape = (self.n_items_, self.n_items_)
            self._cache["neigh"] = sparse.csr_matrix((self.neigh_data_, self.neigh_indices_, self.neigh_indptr_), shape)
        return self._cache["neigh"]


def event_arrays(events: pd.DataFrame, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """The `user` and `item` index columns of an event frame, checked against the model's sizes."""
    missing = {"user", "item"} - set(events.columns)
    if missing:
        raise ConfigError(f"events need the columns user and item (indexes); missing {sorted(missing)}")
    users = np.asarray(events["user"], dtype=np.int64)
    items = np.asarray(events["item"], dtype=np.int64)
    for name, values, n in (("user", users, n_users), ("item", items, n_items)):
        if len(values) and (values.min() < 0 or values.max() >= n):
            raise ConfigError(f"event {name} indexes must lie in [0, {n}), got {values.min()}..{values.max()}")
    return users, items


def append_to_histories(histories: list[np.ndarray], users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Append each (user, item) event to the user's history unless already there, in order, in place.

    Returns a mask of the events that were new."""
    fresh = np.zeros(len(users), dtype=bool)
    for j, (u, i) in enumerate(zip(users.tolist(), items.tolist(), strict=True)):
        if i not in set(histories[u].tolist()):
            histories[u] = np.append(histories[u], np.int64(i))
            fresh[j] = True
    return fresh


def _mean_auc(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, own: np.ndarray | None = None) -> float:
    """Mean over events j of the AUC of column cols[j] in row rows[j] of `scores` (ties count half); `own`
    replaces the event's own score (leave-one-out)."""
    s = np.asarray(scores, dtype=np.float32)[rows]
    mine = s[np.arange(len(rows)), cols] if own is None else np.asarray(own, dtype=np.float32)
    below = (s < mine[:, None]).sum(axis=1)
    ties = (s == mine[:, None]).sum(axis=1) - (1 if own is None else (s[np.arange(len(rows)), cols] == mine))
    return float(np.mean((below + 0.5 * ties) / max(s.shape[1] - 1, 1)))


def _user_item_matrix(interactions: pd.DataFrame, n_users: int, n_items: int) -> sparse.csr_matrix:
    """Binary (n_users, n_items) matrix of who interacted with what."""
    matrix = sparse.csr_matrix(
        (
            np.ones(len(interactions), dtype=np.float32),
            (interactions["user"].to_numpy(), interactions["item"].to_numpy()),
        ),
        shape=(n_users, n_items),
    )
    matrix.data[:] = 1.0
    return matrix


def _normalised_cooccurrence(interactions: sparse.csr_matrix, counts: np.ndarray) -> sparse.csr_matrix:
    """Item-item co-occurrence over users, cosine-normalised (co(i, j) / sqrt(n_i n_j)), zero diagonal."""
    cooc = (interactions.T @ interactions).tocsr().astype(np.float32)
    cooc.setdiag(0.0)
    cooc.eliminate_zeros()
    scale = sparse.diags((1.0 / np.sqrt(np.maximum(counts, 1.0))).astype(np.float32))
    return (scale @ cooc @ scale).tocsr()


def _profile_cosine(history: sparse.csr_matrix, matrix: sparse.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Cosine between each user's mean history row of `matrix` and each item's row."""
    profiles = sparse.csr_matrix(history @ matrix)
    norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1))).ravel()
    norms[norms == 0] = 1.0
    profiles = sparse.diags(1.0 / norms) @ profiles
    return np.asarray((profiles @ matrix[items].T).todense(), dtype=np.float32)
