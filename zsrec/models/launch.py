"""`launch-ranker`: the new-category model, at launch and as the category's first purchases arrive.

At launch nothing is known about a new item but its text. The score is a fixed-weight sum of per-user
standardised parts:
- `zero_shot` (weight 3): the tuned `zero-shot` fusion (semantic, lexical, character and category parts, its
  shop-level choices made on validation categories held out of its own training data, behind its gate);
- `bridge_text` and `bridge_semantic` (weight 1 each): collaborative evidence carried over by text, the mean
  cosine-normalised co-occurrence, over the warm interactions, between the user's history and the new item's
  K text-nearest warm items (nearest by the standard TF-IDF, and by the centred encoder vectors).
The weights are fixed, not learned: weights fitted on simulated launches memorise those launches.

As purchases arrive (`partial_fit(events)`, no retraining), a `popularity` part joins: each new item's revealed
event count on a log scale (shrunk towards its text prior, the popularity of its text-nearest warm items, by
`prior_events` pseudo-events). Its weight is chosen forward in time on the revealed adopters themselves: the
counts of the earlier half rank the later half's purchases, and the weight of the grid that does best wins.
How much the first buyers say about the next ones differs by shop (on groceries a few products take most
purchases; on a technical catalog early and late adopters buy different items), so it is measured, not fixed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import sparse

from zsrec.data.dataset import Dataset
from zsrec.errors import ConfigError
from zsrec.evaluation.metrics import stacked_ndcg
from zsrec.models.base import Recommender, history_counts, standardise_against
from zsrec.models.baselines import TfidfRecommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.interests import postprocess_embeddings
from zsrec.models.tuned import TunedZeroShot, TuningSettings
from zsrec.vectors import standardise

#: the parts, in the order of `weights_`
PARTS = ("zero_shot", "bridge_text", "bridge_semantic", "popularity")


@dataclass(frozen=True)
class LaunchSettings:
    """The launch ranker's parts and weights, and how revealed purchases enter."""

    encoder: str = "minilm"  # encoder spec of the zero-shot part and the semantic neighbours
    # category level of the zero-shot part's validation hold-outs (`TuningSettings.level`); None = its default
    level: int | None = None
    zero_shot_weight: float = 3.0  # the tuned zero-shot fusion, itself a sum of parts
    bridge_text_weight: float = 1.0  # co-occurrence through the TF-IDF-nearest warm items
    bridge_semantic_weight: float = 1.0  # co-occurrence through the encoder-nearest warm items
    neighbours: int = 20  # text-nearest warm items behind a cold item's bridges and popularity prior
    # co-occurring items kept per item (the strongest, by normalised co-occurrence): bounds the model's size
    # where most pairs co-occur (groceries) without losing the pairs that carry the signal
    cooccurrence_top: int = 200
    prior_events: float = 1.0  # pseudo-events per cold item spread by the text prior (popularity shrinkage)
    # weights the popularity part may get once purchases are revealed (chosen forward in time)
    popularity_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    min_adopters: int = 4  # revealed adopters needed before popularity can earn a weight

    def __post_init__(self) -> None:
        if isinstance(self.popularity_grid, list):
            object.__setattr__(self, "popularity_grid", tuple(self.popularity_grid))
        for name in ("zero_shot_weight", "bridge_text_weight", "bridge_semantic_weight", "prior_events"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.zero_shot_weight + self.bridge_text_weight + self.bridge_semantic_weight <= 0:
            raise ConfigError("one of zero_shot_weight, bridge_text_weight and bridge_semantic_weight must be > 0")
        if self.neighbours < 1:
            raise ConfigError(f"neighbours must be >= 1, got {self.neighbours}")
        if self.cooccurrence_top < 1:
            raise ConfigError(f"cooccurrence_top must be >= 1, got {self.cooccurrence_top}")
        if not self.popularity_grid or min(self.popularity_grid) < 0:
            raise ConfigError(f"popularity_grid must be non-empty and >= 0, got {self.popularity_grid}")
        if self.min_adopters < 2:
            raise ConfigError(f"min_adopters must be >= 2, got {self.min_adopters}")

    @property
    def launch_weights(self) -> np.ndarray:
        """The parts' weights before any purchase is revealed (popularity: 0)."""
        return np.asarray(
            [self.zero_shot_weight, self.bridge_text_weight, self.bridge_semantic_weight, 0.0], dtype=np.float32
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LaunchSettings:
        return cls(**values)


class LaunchRanker(Recommender):
    """score(u, i) = Σ_part weight · z_u(part(u, i)), each part standardised over the user's candidates."""

    name = "launch-ranker"
    settings_class = LaunchSettings
    _state = (
        "fit_counts_",
        "revealed_counts_",
        "prior_log_counts_",
        "weights_",
        "revealed_users_",
        "revealed_items_",
        "cooc_data_",
        "cooc_indices_",
        "cooc_indptr_",
        "text_data_",
        "text_indices_",
        "text_indptr_",
        "semantic_data_",
        "semantic_indices_",
        "semantic_indptr_",
    )

    def __init__(self, settings: LaunchSettings | None = None, *, embeddings: EmbeddingSource | None = None) -> None:
        super().__init__(settings or LaunchSettings())
        self._embeddings = embeddings
        self._cache: dict[str, sparse.csr_matrix] = {}
        self._profiles: dict[str, tuple[tuple[int, int], sparse.csr_matrix]] = {}

    # -- fitting -----------------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> Self:
        s = self.settings
        embeddings = self._embeddings or EmbeddingSource(s.encoder)
        tuning = TuningSettings(level=s.level)
        self.base_ = TunedZeroShot(tuning, encoder=s.encoder, embeddings=embeddings).fit(data)
        self._remember(data)
        self.histories_ = self.base_.histories_  # one history list: events reach every part
        matrix = _user_item_matrix(data.interactions, data.n_users, data.n_items)
        self.fit_counts_ = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()
        warm = self.fit_counts_ > 0
        cooc = _top_per_row(_normalised_cooccurrence(matrix, self.fit_counts_), s.cooccurrence_top)
        lexical = TfidfRecommender().fit(data).item_matrix
        semantic = postprocess_embeddings(embeddings.items(data.items, tuning.base.template), "center")
        text = _nearest_warm(lambda rows: np.asarray((lexical[rows] @ lexical.T).todense()), warm, s.neighbours)
        near = _nearest_warm(lambda rows: semantic[rows] @ semantic.T, warm, s.neighbours)
        for name, m in (("cooc", cooc), ("text", text), ("semantic", near)):
            setattr(self, f"{name}_data_", m.data)
            setattr(self, f"{name}_indices_", m.indices)
            setattr(self, f"{name}_indptr_", m.indptr)
        self.prior_log_counts_ = np.asarray(text @ np.log1p(self.fit_counts_), dtype=np.float32).ravel()
        self.revealed_counts_ = np.zeros(data.n_items, dtype=np.float32)
        self.revealed_users_ = np.zeros(0, dtype=np.int64)
        self.revealed_items_ = np.zeros(0, dtype=np.int64)
        self.weights_ = s.launch_weights.copy()
        self.popularity_choice_: dict[str, Any] = {"chosen": 0.0, "reason": "nothing revealed yet"}
        self._cache, self._profiles = {}, {}
        return self

    # -- scoring -----------------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        parts = self.components(users, items)
        total = np.zeros((len(users), len(items)), dtype=np.float32)
        for part, values in parts.items():
            total += self.weights_[PARTS.index(part)] * standardise(values)
        return total

    def score_against(self, users: np.ndarray, items: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """`score`, each part standardised over `reference` instead of `items` (see `ScoresAgainstReference`)."""
        self._check_fitted()
        parts = self.components(users, items, reference=reference)
        ref = self.components(users, reference)
        total = np.zeros((len(users), len(items)), dtype=np.float32)
        for part, values in parts.items():
            total += self.weights_[PARTS.index(part)] * standardise_against(values, ref[part])
        return total

    def components(
        self, users: np.ndarray, items: np.ndarray, *, reference: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The raw parts with a non-zero weight, each (len(users), len(items)); the zero-shot part (itself a
        standardised sum) standardised over `reference` (default: `items`)."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        w = dict(zip(PARTS, self.weights_.tolist(), strict=True))
        parts: dict[str, np.ndarray] = {}
        if w["zero_shot"] > 0:
            zero_shot = (
                self.base_.score(users, items)
                if reference is None
                else self.base_.score_against(users, items, np.asarray(reference, dtype=np.int64))
            )
            parts["zero_shot"] = np.asarray(zero_shot, dtype=np.float32)
        if w["bridge_text"] > 0 or w["bridge_semantic"] > 0:
            history = self._history_matrix(users)
            for part, name in (("bridge_text", "text"), ("bridge_semantic", "semantic")):
                if w[part] > 0:
                    parts[part] = (history @ self._bridge_profiles(name, items).T).toarray().astype(np.float32)
        if w["popularity"] > 0:
            parts["popularity"] = np.broadcast_to(self.popularity(items), (len(users), len(items))).copy()
        return parts

    def popularity(self, items: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """Log of each item's shrunken event count: an item cold at fit has its revealed events plus
        `prior_events` pseudo-events per cold item spread over the cold items by the text prior; a warm item
        has its fit count plus its revealed events. `counts` replaces the revealed counts (all items)."""
        items = np.asarray(items, dtype=np.int64)
        revealed = (self.revealed_counts_ if counts is None else counts)[items]
        cold = self.fit_counts_ <= 0
        prior = np.exp(self.prior_log_counts_ - self.prior_log_counts_[cold].max(initial=0.0))
        pseudo = self.settings.prior_events * cold.sum() * prior[items] / max(float(prior[cold].sum()), 1e-12)
        estimate = np.where(cold[items], revealed + pseudo, self.fit_counts_[items] + revealed)
        return np.log(estimate + 1.0).astype(np.float32)

    def _history_matrix(self, users: np.ndarray) -> sparse.csr_matrix:
        """(len(users), n_items): each user's history as weights 1/len (its mean row)."""
        counts = history_counts(self.histories_, np.asarray(users), self.n_items_)
        lengths = np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1.0).astype(np.float32)
        return sparse.csr_matrix(sparse.diags(1.0 / lengths) @ counts)

    def _bridge_profiles(self, name: str, items: np.ndarray) -> sparse.csr_matrix:
        """(len(items), n_items): each item's neighbours' mean co-occurrence row, so that a user's bridge score
        is their history row times it. Kept for the last candidate set (an evaluation scores many user
        batches against one pool)."""
        fingerprint = (len(items), hash(items.tobytes()))
        key = f"profiles-{name}-{fingerprint}"
        cached = self._profiles.get(key)
        if cached is None:
            profiles = (self._matrix(name)[items] @ self._matrix("cooc")).tocsr()
            self._profiles[key] = cached = (fingerprint, profiles)
            while len(self._profiles) > 4:  # both parts of the last two sets (a short list and its reference)
                self._profiles.pop(next(iter(self._profiles)))
        return cached[1]

    def _matrix(self, name: str) -> sparse.csr_matrix:
        if name not in self._cache:
            arrays = (getattr(self, f"{name}_{a}_") for a in ("data", "indices", "indptr"))
            self._cache[name] = sparse.csr_matrix(tuple(arrays), shape=(self.n_items_, self.n_items_))
        return self._cache[name]

    # -- a live catalog ----------------------------------------------------------------------------------
    def add_items(self, items: pd.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
        """Append `items`: the zero-shot part takes them with all of its parts (`TunedZeroShot.add_items`), the
        popularity part counts their revealed events from the next `partial_fit`. Their bridges stay empty
        (no text-nearest warm items are kept for texts seen after fit): they score 0 there until retrained."""
        self._check_fitted()
        new = self.base_.add_items(items, vectors)
        n = self.n_items_ + len(new)
        for name in ("cooc", "text", "semantic"):
            m = self._matrix(name)
            indptr = np.concatenate([m.indptr, np.full(len(new), m.indptr[-1], dtype=m.indptr.dtype)])
            setattr(self, f"{name}_indptr_", indptr)
        zeros = np.zeros(len(new), dtype=np.float32)
        self.fit_counts_ = np.concatenate([self.fit_counts_, zeros])
        self.revealed_counts_ = np.concatenate([self.revealed_counts_, zeros])
        self.prior_log_counts_ = np.concatenate([self.prior_log_counts_, zeros])
        self.n_items_, self.ids_ = n, self.base_.ids_
        self._cache, self._profiles = {}, {}
        return new

    def add_users(self, user_ids: list[str]) -> np.ndarray:
        new = self.base_.add_users(user_ids)
        self.n_users_, self.ids_ = self.base_.n_users_, self.base_.ids_
        return new

    # -- as purchases arrive -----------------------------------------------------------------------------
    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Fold in new events (int columns `user`, `item`, optional `timestamp`): histories grow, revealed counts
        rise, and the popularity weight is chosen again on the revealed adopters. No training."""
        self._check_fitted()
        touched = np.unique(np.asarray(events["user"], dtype=np.int64)) if "user" in events.columns else []
        before = {int(u): len(self.histories_[int(u)]) for u in touched if 0 <= u < self.n_users_}
        super().partial_fit(events)  # checks the events and appends the new ones to the histories
        fresh = [(u, self.histories_[u][n:]) for u, n in before.items() if len(self.histories_[u]) > n]
        if not fresh:
            return self
        users = np.concatenate([np.full(len(items), u, dtype=np.int64) for u, items in fresh])
        items = np.concatenate([items for _, items in fresh]).astype(np.int64)
        order = np.argsort(_first_event_order(events, users), kind="stable")
        users, items = users[order], items[order]
        np.add.at(self.revealed_counts_, items, 1.0)
        self.revealed_users_ = np.concatenate([self.revealed_users_, users])
        self.revealed_items_ = np.concatenate([self.revealed_items_, items])
        self.popularity_choice_ = self._choose_popularity_weight()
        self.weights_[PARTS.index("popularity")] = self.popularity_choice_["chosen"]
        return self

    def _choose_popularity_weight(self) -> dict[str, Any]:
        """The popularity weight that ranks the later half of the revealed adopters' new-item purchases best,
        from the counts of the earlier half (adopters in order of their first revealed event)."""
        s = self.settings
        cold = self.fit_counts_ <= 0
        on_cold = cold[self.revealed_items_]
        users, items = self.revealed_users_[on_cold], self.revealed_items_[on_cold]
        adopters = np.asarray(list(dict.fromkeys(users.tolist())), dtype=np.int64)
        if len(adopters) < s.min_adopters:
            return {"chosen": 0.0, "reason": f"{len(adopters)} adopters revealed; {s.min_adopters} needed"}
        early, late = adopters[: len(adopters) // 2], adopters[len(adopters) // 2 :]
        counts = np.zeros(self.n_items_, dtype=np.float32)
        np.add.at(counts, items[np.isin(users, early)], 1.0)
        candidates = np.flatnonzero(cold)
        late_targets = [np.unique(items[users == u]) for u in late]
        with self._histories_without(late, cold):
            parts = self.components(late, candidates)
        text = sum(self.weights_[PARTS.index(p)] * standardise(v) for p, v in parts.items() if p != "popularity")
        popularity = standardise(self.popularity(candidates, counts)[None, :])
        position = np.full(self.n_items_, -1, dtype=np.int64)
        position[candidates] = np.arange(len(candidates))
        ndcg = {w: _mean_ndcg(text + w * popularity, [position[t] for t in late_targets]) for w in s.popularity_grid}
        chosen = max(ndcg, key=lambda w: (ndcg[w], -w))  # ties: the smaller weight
        return {"chosen": float(chosen), "adopters": len(adopters), "validation_ndcg@10": ndcg}

    @contextmanager
    def _histories_without(self, users: np.ndarray, drop: np.ndarray) -> Iterator[None]:
        """Temporarily leave the `drop` items out of these users' histories (the purchases being predicted)."""
        kept = {int(u): self.histories_[int(u)] for u in users}
        try:
            for u, h in kept.items():
                self.histories_[u] = h[~drop[h]]
            yield
        finally:
            for u, h in kept.items():
                self.histories_[u] = h

    # -- explanations, persistence ----------------------------------------------------------------------
    def explain(self, user: int, items: np.ndarray, top: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, the user's history items closest to it in text: (history item index, cosine)."""
        return self.base_.explain(user, items, top)

    def explain_parts(
        self, user: int, items: np.ndarray, top: int = 3, *, candidates: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """Per item: each part's weighted, standardised share of its score among `candidates` (default: the
        whole catalog; the shares add up to `score`), the history items closest in text (the zero-shot part's
        reasons), and the item's revealed events."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        candidates = np.arange(self.n_items_) if candidates is None else np.asarray(candidates, dtype=np.int64)
        column = {int(c): j for j, c in enumerate(candidates)}
        missing = [int(i) for i in items if int(i) not in column]
        if missing:
            raise ConfigError(f"explain: items {missing[:5]} are not among the candidates")
        parts = {p: standardise(v)[0] for p, v in self.components(np.asarray([user]), candidates).items()}
        reasons = self.base_.explain(user, items, top)
        return [
            {
                "item": int(item),
                "contributions": {
                    p: float(self.weights_[PARTS.index(p)] * v[column[int(item)]]) for p, v in parts.items()
                },
                "history": reasons[row],
                "revealed_events": int(self.revealed_counts_[item]),
            }
            for row, item in enumerate(items)
        ]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config() | {"settings": self.settings.to_dict()}
        if hasattr(self, "popularity_choice_"):
            config["popularity_choice"] = self.popularity_choice_
        return config

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        self.base_.save(Path(directory) / "zero-shot")

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        model = super().load(directory)
        model.base_ = TunedZeroShot.load(Path(directory) / "zero-shot")
        model.histories_ = model.base_.histories_  # one history list, as after fit
        config = json.loads((Path(directory) / "config.json").read_text())
        model.popularity_choice_ = config.get("popularity_choice", {})
        model._cache, model._profiles = {}, {}
        return model


def _first_event_order(events: pd.DataFrame, users: np.ndarray) -> np.ndarray:
    """For each of `users`, the row of that user's first event in `events`: the order in which adopters
    arrived. Rows, not the `timestamp` column, because a log without times carries file positions there, while
    the caller (the service, the warm-up protocol) passes events in the order they happened."""
    first: dict[int, int] = {}
    for position, u in enumerate(np.asarray(events["user"], dtype=np.int64).tolist()):
        first.setdefault(u, position)
    return np.asarray([first.get(int(u), len(first)) for u in users], dtype=np.int64)


def _mean_ndcg(scores: np.ndarray, targets: list[np.ndarray], k: int = 10) -> float:
    """Mean NDCG@k over rows; a target's rank is the number of other candidates scoring at least as high
    (ties count against it, so a weight that leaves everything tied earns nothing)."""
    ranks, owners, lengths = [], [], []
    for row, cols in enumerate(targets):
        mine = scores[row, cols]
        ranks.append((scores[row][None, :] >= mine[:, None]).sum(axis=1) - 1)
        owners.append(np.full(len(cols), row))
        lengths.append(len(cols))
    per_user = stacked_ndcg(np.concatenate(ranks), np.concatenate(owners), np.asarray(lengths), k)
    return float(np.mean(per_user))


def _nearest_warm(similarity, warm: np.ndarray, k: int) -> sparse.csr_matrix:
    """Row i: weight 1 on item i itself when it is warm, else 1/K on its K most similar warm items.

    `similarity(rows)` gives the (len(rows), n_items) similarities of those items to every item."""
    n = len(warm)
    warm_idx, cold_idx = np.flatnonzero(warm), np.flatnonzero(~warm)
    rows, cols, vals = [warm_idx], [warm_idx], [np.ones(len(warm_idx), dtype=np.float32)]
    if len(warm_idx) and len(cold_idx):
        k = min(k, len(warm_idx))
        for start in range(0, len(cold_idx), 512):
            chunk = cold_idx[start : start + 512]
            sims = np.asarray(similarity(chunk))[:, warm_idx]
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            rows.append(np.repeat(chunk, k))
            cols.append(warm_idx[top].ravel())
            vals.append(np.full(len(chunk) * k, 1.0 / k, dtype=np.float32))
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32
    )


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


def _top_per_row(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """`matrix` with only the `k` largest entries of each row kept."""
    matrix = matrix.tocsr()
    lengths = np.diff(matrix.indptr)
    if lengths.max(initial=0) <= k:
        return matrix
    keep = np.zeros(len(matrix.data), dtype=bool)
    for row in np.flatnonzero(lengths):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if end - start <= k:
            keep[start:end] = True
        else:
            keep[start + np.argpartition(-matrix.data[start:end], k - 1)[:k]] = True
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)[keep]
    return sparse.csr_matrix((matrix.data[keep], (rows, matrix.indices[keep])), shape=matrix.shape)
