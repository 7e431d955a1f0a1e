"""Launch day in the whole catalog: `interleave` and `launch-blend`, one ranking over old and new items.

A new item is one with no interaction in the data a model is fitted on (a category that has not launched yet).

- `interleave` is the rule a shop would try first: ALS's ranking of the old items, with `zero-shot`'s best new
  items placed at a fixed share of the slots, spread evenly over every ten. The share is chosen on a simulated
  launch inside the training data.
- `launch-blend` decides per user. `launch-ranker` scores old and new items (on old items its bridges are an
  item-to-item co-occurrence, next to the text similarity) and ALS scores the old ones. Two logistic regressions
  turn ranks and evidence into the chance that an item is in the user's next purchases: one for old items (their
  ALS rank, their `launch-ranker` rank among old items, the history's length), one for new items (their rank
  among the new items, their `launch-ranker` score, how far the raw zero-shot similarity of the new item
  exceeds that of the user's best old items, the raw co-occurrence through the item's text neighbours, and the
  category-level evidence the adoption model uses: the cosine between the user and the item's category, and
  how much that category stands out among all categories for the user). Sorting every candidate by that chance
  is the merge: a new item enters above an old one only where it is the likelier purchase, so a user with no
  sign of wanting the new category keeps the old list.

Where the chances are learned: on simulated launches inside the training data. A seeded share of the
categories that have interactions is held out (never the test window: the simulation's own test windows are
the last part of each user's training interactions), and split in two disjoint halves. The regressions are
fitted on launches of the first half; a log-odds offset for new items (one number, from a small grid that
includes "never promote") is chosen on launches of the second half, which the regressions have not seen. A
handful of coefficients, not a ranker over episodes: rankers learned on simulated launches memorised them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from zsrec.data.dataset import Dataset
from zsrec.data.splits import LAUNCH, EvalSplit, SplitSettings, launch_split
from zsrec.errors import ConfigError
from zsrec.evaluation.metrics import stacked_ndcg
from zsrec.models.als import AlsRecommender, AlsSettings
from zsrec.models.base import Recommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.launch import PARTS, LaunchRanker, LaunchSettings
from zsrec.models.tuned import TunedZeroShot, TuningSettings
from zsrec.vectors import standardise

WARM_FEATURES = ("log_rank_als", "log_rank_launch", "log_history")
NEW_FEATURES = (
    "log_rank_new",
    "launch_score",
    "zero_shot_margin",
    "bridge_text",
    "bridge_semantic",
    "category_cosine",
    "category_cosine_z",
    "log_history",
)
#: slots per block over which `interleave` spreads its share of new items
BLOCK = 10


@dataclass(frozen=True)
class SimulationSettings:
    """How the simulated launches inside the training data are carved."""

    level: int | None = None  # category level held out; None = the top level with >= 4 categories, else 2
    holdout_fraction: float = 0.2  # share of the level's categories with interactions held out (both halves)
    test_fraction: float = 0.2  # the last share of each user's training interactions that is their test window
    min_history: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("holdout_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.min_history < 1:
            raise ConfigError(f"min_history must be >= 1, got {self.min_history}")


@dataclass(frozen=True)
class Launch:
    """One simulated launch: a launch split of the training data, the categories it fits or validates on (the
    other half's items are left out of the candidates), and the sub-models fitted on its training part."""

    split: EvalSplit
    halves: tuple[tuple[str, ...], tuple[str, ...]]
    als: AlsRecommender
    launch: LaunchRanker
    #: items without any interaction in the data the launch was carved from (the real launch's items): never
    #: candidates in the simulation, where nobody could have bought them
    unsold: np.ndarray


def simulation_categories(data: Dataset, s: SimulationSettings) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """(level, first half, second half): a seeded draw of the level's categories with interactions."""
    level = s.level
    if level is None:
        level = 1 if len({c for c in data.category_at(1) if c}) >= 4 or data.category_depth() < 2 else 2
    counts = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items)
    cats = data.category_at(level)
    active = sorted({c for c, n in zip(cats, counts, strict=True) if c and n > 0})
    if len(active) < 3:
        return level, (), ()
    n = min(max(2, round(s.holdout_fraction * len(active))), len(active) - 1)
    chosen = np.random.default_rng(s.seed).choice(active, size=n, replace=False).tolist()
    half = (n + 1) // 2
    return level, tuple(sorted(chosen[:half])), tuple(sorted(chosen[half:]))


#: simulated launches of this process by (data, settings, encoder): interleave and launch-blend share one, and
#: fitting its launch-ranker (zero-shot tuning included) is the expensive step
_SIMULATIONS: dict[str, Launch | None] = {}
_SIMULATIONS_SIZE = 2


def simulated_launch(data: Dataset, s: SimulationSettings, encoder: str, embeddings: EmbeddingSource) -> Launch | None:
    """The simulated launch of `data` (memoised per process); None where the data has too few categories or
    users for one."""
    key = _data_key(data, repr(s) + encoder + embeddings.encoder.model_id)
    if key in _SIMULATIONS:
        return _SIMULATIONS[key]
    level, first, second = simulation_categories(data, s)
    launch: Launch | None = None
    if first and second:
        settings = SplitSettings(
            protocol=LAUNCH, level=level, test_fraction=s.test_fraction, min_history=s.min_history, seed=s.seed
        )
        try:
            split = launch_split(data, settings, heldout=first + second)
        except ConfigError:
            split = None
        if split is not None:
            als = AlsRecommender().fit(split.train)
            ranker = LaunchRanker(LaunchSettings(encoder=encoder, level=level), embeddings=embeddings)
            unsold = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items) == 0
            launch = Launch(split, (first, second), als, ranker.fit(split.train), unsold)
    while len(_SIMULATIONS) >= _SIMULATIONS_SIZE:
        _SIMULATIONS.pop(next(iter(_SIMULATIONS)))
    _SIMULATIONS[key] = launch
    return launch


def _data_key(data: Dataset, extra: str) -> str:
    digest = hashlib.sha256(extra.encode("utf-8"))
    digest.update(str(data.n_items).encode("utf-8"))
    for column in ("item_id", "title", "category"):
        if column in data.items.columns:
            digest.update("\x1f".join(data.items[column].astype(str)).encode("utf-8"))
    for column in ("user", "item"):
        digest.update(np.ascontiguousarray(data.interactions[column].to_numpy(dtype=np.int64)).tobytes())
    return digest.hexdigest()


def within_ranks(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, each column's 0-based rank by score among the row's `allowed` columns (ties by column order);
    columns not allowed rank after every allowed one."""
    masked = np.where(allowed, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1)
    return ranks


def seen_mask(histories: list[np.ndarray], users: np.ndarray, n_items: int) -> np.ndarray:
    """(len(users), n_items) True where the item is in the user's history."""
    mask = np.zeros((len(users), n_items), dtype=bool)
    for row, u in enumerate(users):
        mask[row, histories[int(u)]] = True
    return mask


def block_positions(share: float, n_warm: np.ndarray, n_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Final 0-based list positions of the warm item of warm-rank r and the new item of new-rank q when a
    `share` of every `BLOCK` slots goes to new items, spread evenly (none: every new item after the old ones).

    Args:
        n_warm, n_new: the warm and new ranks to place (any shape).
    """
    slots = int(round(share * BLOCK))
    if slots <= 0:
        return n_warm.astype(np.float64), 1e9 + n_new.astype(np.float64)
    new_slots = np.asarray(sorted({int((j + 0.5) * BLOCK / slots) for j in range(slots)}), dtype=np.int64)
    warm_slots = np.setdiff1d(np.arange(BLOCK), new_slots)
    if len(warm_slots) == 0:
        return 1e9 + n_warm.astype(np.float64), n_new.astype(np.float64)
    warm_pos = (n_warm // len(warm_slots)) * BLOCK + warm_slots[n_warm % len(warm_slots)]
    new_pos = (n_new // len(new_slots)) * BLOCK + new_slots[n_new % len(new_slots)]
    return warm_pos.astype(np.float64), new_pos.astype(np.float64)


def episode_ndcg(scores: np.ndarray, users_targets: list[np.ndarray], allowed: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-row NDCG@k of full score rows against each row's targets, over the `allowed` columns."""
    ranks = within_ranks(scores, allowed)
    flat = np.concatenate([ranks[row, t] for row, t in enumerate(users_targets)])
    owner = np.repeat(np.arange(len(users_targets)), [len(t) for t in users_targets])
    return stacked_ndcg(flat, owner, np.asarray([len(t) for t in users_targets]), k)


def task_rows(launch: Launch, half: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """The users, targets and excluded items of one half's launch: the other half's items are not candidates
    and not targets; users left without a target drop out."""
    split = launch.split
    other = np.isin(split.item_category, np.asarray(launch.halves[1 - half], dtype=object)) | launch.unsold
    users, targets = [], []
    for u, t in zip(split.test_users, split.targets, strict=True):
        kept = t[~other[t]]
        if len(kept):
            users.append(int(u))
            targets.append(kept)
    return np.asarray(users, dtype=np.int64), targets, other


@dataclass(frozen=True)
class InterleaveSettings:
    """ALS with `zero-shot`'s best new items at a fixed share of slots."""

    encoder: str = "minilm"
    share: float | None = None  # share of every ten slots for new items; None = chosen on a simulated launch
    shares: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # the grid the share is chosen from
    simulation: SimulationSettings = field(default_factory=SimulationSettings)

    def __post_init__(self) -> None:
        if isinstance(self.shares, list):
            object.__setattr__(self, "shares", tuple(self.shares))
        if isinstance(self.simulation, dict):
            object.__setattr__(self, "simulation", SimulationSettings(**self.simulation))
        for value in (*self.shares, *(() if self.share is None else (self.share,))):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"interleave shares must be in [0, 1], got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InterleaveSettings:
        return cls(**values)


class InterleaveRecommender(Recommender):
    """score = minus the item's final position: ALS's order of the old items, `zero-shot`'s order of the new
    items, the new ones at `share_` of every ten slots."""

    name = "interleave"
    settings_class = InterleaveSettings
    _state = ("cold_",)

    def __init__(self, settings: InterleaveSettings | None = None, *, embeddings: EmbeddingSource | None = None):
        super().__init__(settings or InterleaveSettings())
        self._embeddings = embeddings

    def fit(self, data: Dataset) -> Self:
        s = self.settings
        embeddings = self._embeddings or EmbeddingSource(s.encoder)
        self._remember(data)
        self.cold_ = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items) == 0
        self.als_ = AlsRecommender().fit(data)
        tuning = TuningSettings(level=s.simulation.level)
        self.zero_shot_ = TunedZeroShot(tuning, encoder=s.encoder, embeddings=embeddings).fit(data)
        self.histories_ = self.zero_shot_.histories_
        self.choice_: dict[str, Any] = {"share": s.share, "reason": "fixed"}
        if s.share is None:
            launch = simulated_launch(data, s.simulation, s.encoder, embeddings)
            self.choice_ = self._choose(launch)
        self.share_ = float(self.choice_["share"])
        return self

    def _choose(self, launch: Launch | None) -> dict[str, Any]:
        """The share of the grid with the best NDCG@10 on the simulated launch (both halves as new)."""
        if launch is None:
            return {"share": 0.0, "reason": "no simulated launch (too few categories or users)"}
        split = launch.split
        cold = np.bincount(split.train.interactions["item"].to_numpy(), minlength=split.train.n_items) == 0
        users = split.test_users
        ndcg: dict[float, list[np.ndarray]] = {share: [] for share in self.settings.shares}
        for start in range(0, len(users), 256):
            batch = users[start : start + 256]
            seen = seen_mask(launch.als.histories_, batch, split.train.n_items) | launch.unsold[None, :]
            warm_scores = launch.als.score(batch, np.arange(split.train.n_items))
            new_scores = launch.launch.base_.score(batch, np.arange(split.train.n_items))
            targets = split.targets[start : start + len(batch)]
            for share in self.settings.shares:
                scores = interleaved_scores(share, warm_scores, new_scores, cold, seen)
                ndcg[share].append(episode_ndcg(scores, targets, ~seen))
        means = {share: float(np.concatenate(v).mean()) for share, v in ndcg.items()}
        best = max(means, key=lambda share: (means[share], -share))  # ties: the smaller share
        return {"share": best, "validation_ndcg@10": means, "validation_users": len(users)}

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        every = np.arange(self.n_items_)
        seen = seen_mask(self.histories_, users, self.n_items_)
        scores = interleaved_scores(
            self.share_, self.als_.score(users, every), self.zero_shot_.score(users, every), self.cold_, seen
        )
        return scores[:, np.asarray(items, dtype=np.int64)]

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Fold new events into both parts: ALS refits, zero-shot's histories (shared with this model) grow."""
        self._check_fitted()
        self.zero_shot_.partial_fit(events)
        self.als_.partial_fit(events)
        return self

    def with_share(self, share: float) -> InterleaveRecommender:
        """A copy of this fitted model with another fixed share (the benchmark's one point per share)."""
        other = InterleaveRecommender(self.settings)
        other.__dict__.update(self.__dict__)
        other.share_ = float(share)
        other.choice_ = {"share": float(share), "reason": "fixed"}
        return other

    def get_config(self) -> dict[str, Any]:
        config = super().get_config() | {"settings": self.settings.to_dict()}
        if hasattr(self, "choice_"):
            config["choice"] = self.choice_
        return config

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        self.als_.save(Path(directory) / "als")
        self.zero_shot_.save(Path(directory) / "zero-shot")

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        model = super().load(directory)
        model.als_ = AlsRecommender.load(Path(directory) / "als")
        model.zero_shot_ = TunedZeroShot.load(Path(directory) / "zero-shot")
        model.histories_ = model.zero_shot_.histories_
        model.choice_ = json.loads((Path(directory) / "config.json").read_text()).get("choice", {})
        model.share_ = float(model.choice_.get("share") or 0.0)
        return model


def interleaved_scores(
    share: float, warm_scores: np.ndarray, new_scores: np.ndarray, cold: np.ndarray, seen: np.ndarray
) -> np.ndarray:
    """Minus each item's position in the interleaved list (seen items last)."""
    warm_rank = within_ranks(warm_scores, ~cold[None, :] & ~seen)
    new_rank = within_ranks(new_scores, cold[None, :] & ~seen)
    warm_pos, new_pos = block_positions(share, warm_rank, new_rank)
    position = np.where(cold[None, :], new_pos, warm_pos)
    return np.where(seen, -np.inf, -position)


#: the log-odds offset that never lets a new item above an old one (the grid's "never promote")
NEVER = -1.0e4


@dataclass(frozen=True)
class BlendSettings:
    """`launch-blend`: the warm and new scorers, the merge's training sample, and the offsets validated."""

    encoder: str = "minilm"
    top: int = 50  # per user and side, the best-ranked old and new items the regressions learn from
    regularization: float = 1.0  # inverse L2 strength (scikit-learn's C) of both regressions
    # log-odds added to every new item, chosen on the validation half; NEVER keeps new items below the old ones
    offsets: tuple[float, ...] = (NEVER, -1.0, -0.5, 0.0, 0.5, 1.0)
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    als: AlsSettings = field(default_factory=AlsSettings)

    def __post_init__(self) -> None:
        for name, kind in (("offsets", tuple), ("simulation", SimulationSettings), ("als", AlsSettings)):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
            elif isinstance(value, dict):
                object.__setattr__(self, name, kind(**value))
        if self.top < 1:
            raise ConfigError(f"top must be >= 1, got {self.top}")
        if not self.regularization > 0:
            raise ConfigError(f"regularization must be > 0, got {self.regularization}")
        if not self.offsets:
            raise ConfigError("offsets must name at least one value")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BlendSettings:
        return cls(**values)


class BlendFeatures:
    """The merge's inputs for a batch of users over the whole catalog, from a fitted ALS and launch-ranker."""

    def __init__(
        self, als: AlsRecommender, ranker: LaunchRanker, cold: np.ndarray, users: np.ndarray, allowed: np.ndarray
    ) -> None:
        n_items = len(cold)
        self.users = np.asarray(users, dtype=np.int64)
        self.cold = cold
        self.warm_allowed = allowed & ~cold[None, :]
        self.new_allowed = allowed & cold[None, :]
        warm_items, cold_items = np.flatnonzero(~cold), np.flatnonzero(cold)
        weights = dict(zip(PARTS, ranker.weights_.tolist(), strict=True))
        launch_score = np.zeros((len(users), n_items), dtype=np.float32)
        raw_new: dict[str, np.ndarray] = {}
        for items in (warm_items, cold_items):
            if len(items) == 0:
                continue
            parts = ranker.components(self.users, items)
            launch_score[:, items] = sum(weights[p] * standardise(v) for p, v in parts.items())
            if items is cold_items:
                raw_new = parts
        self.launch_score = launch_score
        self.als_score = als.score(self.users, np.arange(n_items))
        self.rank_als = within_ranks(self.als_score, self.warm_allowed)
        self.rank_launch = within_ranks(launch_score, self.warm_allowed)
        self.rank_new = within_ranks(launch_score, self.new_allowed)
        zero_shot = ranker.base_.model_
        vectors = zero_shot.user_vectors(self.users)
        cosine = vectors @ zero_shot.item_vectors_.T
        best_warm = np.where(self.rank_launch < 10, cosine, np.nan)
        with np.errstate(invalid="ignore"):
            warm_level = np.nan_to_num(np.nanmean(best_warm, axis=1), nan=0.0)
        category = vectors @ zero_shot.category_vectors_.T
        lengths = np.asarray([len(np.unique(ranker.histories_[int(u)])) for u in self.users], dtype=np.float32)
        self._columns = {
            "log_rank_als": np.log1p(self.rank_als),
            "log_rank_launch": np.log1p(self.rank_launch),
            "log_history": np.broadcast_to(np.log1p(lengths)[:, None], (len(users), n_items)),
            "log_rank_new": np.log1p(self.rank_new),
            "launch_score": launch_score,
            "zero_shot_margin": cosine - warm_level[:, None],
            "bridge_text": self._scatter(raw_new.get("bridge_text"), cold_items, n_items),
            "bridge_semantic": self._scatter(raw_new.get("bridge_semantic"), cold_items, n_items),
            "category_cosine": category[:, zero_shot.category_index_],
            "category_cosine_z": standardise(category)[:, zero_shot.category_index_],
        }

    @staticmethod
    def _scatter(values: np.ndarray | None, items: np.ndarray, n_items: int) -> np.ndarray:
        """Raw co-occurrence of the new items on a log scale, in whole-catalog columns (0 elsewhere)."""
        out = np.zeros((0 if values is None else len(values), n_items), dtype=np.float32)
        if values is not None:
            out[:, items] = np.log1p(1000.0 * np.maximum(values, 0.0))
        return out

    def matrix(self, names: tuple[str, ...], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(len(rows), len(names)) features of the (row, column) pairs."""
        return np.stack([self._columns[n][rows, cols] for n in names], axis=1).astype(np.float64)

    def logits(self, names: tuple[str, ...], coef: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """(n_users, n_items) intercept + Σ coef · standardised feature."""
        out = np.full(self.launch_score.shape, coef[0], dtype=np.float64)
        for j, name in enumerate(names):
            out += coef[j + 1] * (self._columns[name] - mean[j]) / scale[j]
        return out

    def contributions(
        self, names: tuple[str, ...], coef: np.ndarray, mean: np.ndarray, scale: np.ndarray, row: int, col: int
    ) -> dict[str, float]:
        """Each feature's share of one pair's log-odds (the intercept apart)."""
        return {n: float(coef[j + 1] * (self._columns[n][row, col] - mean[j]) / scale[j]) for j, n in enumerate(names)}


@dataclass
class Merge:
    """The learned merge: a logistic regression per side (coefficients with the intercept first, and the
    features' mean and scale) and the new items' log-odds offset."""

    warm: tuple[np.ndarray, np.ndarray, np.ndarray]
    new: tuple[np.ndarray, np.ndarray, np.ndarray]
    offset: float = NEVER
    als_only: bool = False  # the merge lost to ALS where it was validated: ALS's own scores, unchanged

    def scores(self, features: BlendFeatures) -> np.ndarray:
        """(n_users, n_items): log-odds of purchase, new items shifted by the offset (or ALS's scores)."""
        if self.als_only:
            return np.asarray(features.als_score, dtype=np.float64)
        warm = features.logits(WARM_FEATURES, *self.warm)
        new = features.logits(NEW_FEATURES, *self.new) + self.offset
        return np.where(features.cold[None, :], new, warm)


def _sample(features: BlendFeatures, targets: list[np.ndarray], top: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per side: the features and labels of each user's `top` best-ranked allowed items."""
    label = np.zeros(features.launch_score.shape, dtype=bool)
    for row, t in enumerate(targets):
        label[row, t] = True
    warm = features.warm_allowed & ((features.rank_als < top) | (features.rank_launch < top))
    new = features.new_allowed & (features.rank_new < top)
    out = {}
    for side, mask, names in (("warm", warm, WARM_FEATURES), ("new", new, NEW_FEATURES)):
        rows, cols = np.nonzero(mask)
        out[side] = (features.matrix(names, rows, cols), label[rows, cols])
    return out


def _fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients (intercept first), mean and scale of a logistic regression on standardised features. A side
    with no positive label (or no row) gets a very low intercept and keeps its first feature's order (a rank)."""
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    scale = x.std(axis=0) if len(x) else np.ones(x.shape[1])
    scale[scale == 0] = 1.0
    if len(y) == 0 or y.all() or not y.any():
        coef = np.zeros(x.shape[1] + 1)
        coef[0], coef[1] = -20.0, -1.0
        return coef, mean, scale
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return np.concatenate([model.intercept_, model.coef_[0]]), mean, scale


class LaunchBlend(Recommender):
    """score(u, i) = the log-odds that i is among u's next purchases: one regression for old items, one for new
    items (plus the validated offset), learned on simulated launches; see the module docstring."""

    name = "launch-blend"
    settings_class = BlendSettings
    _state = (
        "cold_",
        "warm_coef_",
        "warm_mean_",
        "warm_scale_",
        "new_coef_",
        "new_mean_",
        "new_scale_",
        "offset_",
        "als_only_",
    )

    def __init__(self, settings: BlendSettings | None = None, *, embeddings: EmbeddingSource | None = None):
        super().__init__(settings or BlendSettings())
        self._embeddings = embeddings

    def fit(self, data: Dataset) -> Self:
        s = self.settings
        embeddings = self._embeddings or EmbeddingSource(s.encoder)
        self._remember(data)
        self.cold_ = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items) == 0
        self.als_ = AlsRecommender(s.als).fit(data)
        level = s.simulation.level
        self.launch_ = LaunchRanker(LaunchSettings(encoder=s.encoder, level=level), embeddings=embeddings).fit(data)
        self.histories_ = self.launch_.histories_
        launch = simulated_launch(data, s.simulation, s.encoder, embeddings)
        merge, self.learning_ = self._learn(launch)
        self._set_merge(merge)
        return self

    def _set_merge(self, merge: Merge) -> None:
        self.warm_coef_, self.warm_mean_, self.warm_scale_ = merge.warm
        self.new_coef_, self.new_mean_, self.new_scale_ = merge.new
        self.offset_ = np.asarray(merge.offset, dtype=np.float64)
        self.als_only_ = np.asarray(merge.als_only)

    @property
    def merge(self) -> Merge:
        return Merge(
            (self.warm_coef_, self.warm_mean_, self.warm_scale_),
            (self.new_coef_, self.new_mean_, self.new_scale_),
            float(self.offset_),
            bool(self.als_only_),
        )

    def _learn(self, launch: Launch | None) -> tuple[Merge, dict[str, Any]]:
        """Fit the regressions on the first half's launch, choose the offset on the second half's."""
        s = self.settings
        n_warm, n_new = len(WARM_FEATURES), len(NEW_FEATURES)
        als_order = np.zeros(n_warm + 1)
        als_order[1 + WARM_FEATURES.index("log_rank_als")] = -1.0
        fallback = Merge(
            (als_order, np.zeros(n_warm), np.ones(n_warm)),
            (np.zeros(n_new + 1), np.zeros(n_new), np.ones(n_new)),
            als_only=True,
        )
        if launch is None:
            return fallback, {"reason": "no simulated launch (too few categories or users): ALS's scores, unchanged"}
        samples: dict[str, list] = {"warm": [], "new": []}
        for features, targets in _episode_batches(launch, 0):
            for side, pair in _sample(features, targets, s.top).items():
                samples[side].append(pair)
        fitted = {}
        for side in ("warm", "new"):
            x = np.concatenate([p[0] for p in samples[side]])
            y = np.concatenate([p[1] for p in samples[side]])
            fitted[side] = _fit_logistic(x, y, s.regularization)
        validation: dict[str, list[np.ndarray]] = {"als": []} | {repr(o): [] for o in s.offsets}
        for features, targets in _episode_batches(launch, 1):
            allowed = features.warm_allowed | features.new_allowed
            validation["als"].append(episode_ndcg(features.als_score, targets, allowed))
            for offset in s.offsets:
                scores = Merge(fitted["warm"], fitted["new"], offset).scores(features)
                validation[repr(offset)].append(episode_ndcg(scores, targets, allowed))
        ndcg = {key: float(np.concatenate(v).mean()) for key, v in validation.items()}
        best = max(s.offsets, key=lambda o: (ndcg[repr(o)], -o))  # ties: the more cautious offset
        if ndcg[repr(best)] <= ndcg["als"]:  # the merge must beat the old items' ALS order where it was not fitted
            return fallback, {
                "reason": "the merge did not beat ALS on the validation launch: ALS's scores, unchanged",
                "validation_ndcg@10": ndcg,
            }
        record = {
            "fitted_on": list(launch.halves[0]),
            "validated_on": list(launch.halves[1]),
            "offset": best,
            "validation_ndcg@10": ndcg,
            "coefficients": {
                "warm": dict(zip(("intercept", *WARM_FEATURES), fitted["warm"][0].tolist(), strict=True)),
                "new": dict(zip(("intercept", *NEW_FEATURES), fitted["new"][0].tolist(), strict=True)),
            },
        }
        return Merge(fitted["warm"], fitted["new"], best), record

    def _features(self, users: np.ndarray) -> BlendFeatures:
        allowed = ~seen_mask(self.histories_, users, self.n_items_)
        return BlendFeatures(self.als_, self.launch_, self.cold_, users, allowed)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        features = self._features(users)
        scores = self.merge.scores(features)
        return scores[:, np.asarray(items, dtype=np.int64)].astype(np.float64)

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Fold new events into both scorers: the launch-ranker (whose histories this model shares) counts them
        and may give the new items' popularity a weight; ALS refits. Items new at fit stay on the new side of
        the merge, where the launch-ranker's popularity part now lifts them."""
        self._check_fitted()
        self.launch_.partial_fit(events)
        self.als_.partial_fit(events)
        return self

    def explain_slots(self, user: int, k: int = 10) -> list[dict[str, Any]]:
        """The user's top `k`: per slot the item, whether it is new, its estimated log-odds of purchase, and for
        a new item why it earned the slot: each input's share of its log-odds, the offset, the old item it
        outranked (the best old item below it) and the history items closest to it in text."""
        self._check_fitted()
        features = self._features(np.asarray([user], dtype=np.int64))
        merge = self.merge
        scores = merge.scores(features)[0]
        allowed = (features.warm_allowed | features.new_allowed)[0]
        scores = np.where(allowed, scores, -np.inf)
        top = np.argsort(-scores, kind="stable")[:k]
        out = []
        for slot, item in enumerate(top.tolist()):
            entry: dict[str, Any] = {
                "slot": slot + 1,
                "item": item,
                "new": bool(self.cold_[item]),
                "log_odds": float(scores[item]),
            }
            if self.cold_[item]:
                below = [
                    int(i) for i in np.argsort(-scores, kind="stable") if not self.cold_[i] and scores[i] < scores[item]
                ]
                entry["inputs"] = features.contributions(NEW_FEATURES, *merge.new, 0, item)
                entry["offset"] = float(merge.offset)
                entry["outranked"] = {"item": below[0], "log_odds": float(scores[below[0]])} if below else None
                entry["history"] = self.launch_.explain(user, np.asarray([item]))[0]
            out.append(entry)
        return out

    def explain(self, user: int, items: np.ndarray, top: int = 3) -> list[list[tuple[int, float]]]:
        """For each item, the user's history items closest to it in text (the launch-ranker's reasons)."""
        return self.launch_.explain(user, items, top)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config() | {"settings": self.settings.to_dict()}
        if hasattr(self, "learning_"):
            config["learning"] = self.learning_
        return config

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        self.als_.save(Path(directory) / "als")
        self.launch_.save(Path(directory) / "launch-ranker")

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        model = super().load(directory)
        model.als_ = AlsRecommender.load(Path(directory) / "als")
        model.launch_ = LaunchRanker.load(Path(directory) / "launch-ranker")
        model.histories_ = model.launch_.histories_
        model.learning_ = json.loads((Path(directory) / "config.json").read_text()).get("learning", {})
        return model


def _episode_batches(launch: Launch, half: int, batch_size: int = 128):
    """(features, targets) per batch of one half's launch users, the other half's items not allowed."""
    users, targets, other = task_rows(launch, half)
    n_items = launch.split.train.n_items
    cold = np.bincount(launch.split.train.interactions["item"].to_numpy(), minlength=n_items) == 0
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        allowed = ~seen_mask(launch.launch.histories_, batch, n_items) & ~other[None, :]
        yield BlendFeatures(launch.als, launch.launch, cold, batch, allowed), targets[start : start + batch_size]
