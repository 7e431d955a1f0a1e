"""`ensemble`: several recommenders fused into one, with fusion weights tuned on validation categories only.

Three fusions of the members' scores for each user over the candidates:
- `score`: Σ_m w_m · z_m, where z_m standardises member m's scores per user (their scales differ);
- `rrf` (reciprocal rank fusion, Cormack et al. 2009): Σ_m w_m / (rrf_k + rank_m), rank 1 = best;
- `borda`: Σ_m w_m · (n − rank_m) / (n − 1), a weighted Borda count (1 for the best, 0 for the last).

`fit(data)` holds out seeded sets of categories *of the data it is given* (`tuning_folds`; in an
evaluation the test categories have no interactions there, so they are never drawn), fits every member on
each fold's training part, and searches the weights of each fusion by coordinate ascent over a small grid,
starting from the best single member, on mean NDCG@10 over the folds. The best (fusion, weights) is kept
only if the same search, run on all folds but one and scored on the one left out, beats the best single
member there beyond noise (`gate_confidence`); else the ensemble is that member alone. Then every member is
fitted on all of `data`. Weights, the search's trace and the fold categories are kept
in `tuning_` and written to config.json; each member is saved in its own subfolder by its own `save`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
from scipy.stats import rankdata

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, tuning_folds
from zsrec.errors import ConfigError
from zsrec.evaluation.ranking import new_pool_ndcg
from zsrec.models.base import ModelBuilder, ModelLoader, Recommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.selection import held_out_masks, n_parts, paired_gate

FUSIONS = ("score", "rrf", "borda")
#: the members `--models ensemble` gets when none are named: the tuned zero-shot hybrid, two single views of
#: the text it fuses differently (multi-interest semantics, plain TF-IDF), and the category affinity
DEFAULT_MEMBERS = ("zero-shot", "zero-shot-multi", "tfidf", "category-affinity")
#: members that cannot sit in an ensemble (they read test targets, or would nest)
EXCLUDED_MEMBERS = ("popularity-oracle", "ensemble")


@dataclass(frozen=True)
class EnsembleSettings:
    """Members, the fusions tried, and how the weights are searched on validation categories."""

    members: tuple[str, ...] = DEFAULT_MEMBERS  # registered model names, at least two
    encoder: str = "minilm"  # encoder spec handed to the text members
    fusions: tuple[str, ...] = FUSIONS  # fusions searched; the best on validation is kept
    weight_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)  # values a member's weight may take
    rounds: int = 2  # passes of coordinate ascent over the members
    min_gain: float = 1e-4  # a weight change must raise mean validation NDCG@10 by more than this
    rrf_k: float = 60.0  # rrf: the constant added to ranks
    level: int | None = None  # category level of the validation hold-out; None = top level if it has >= 4
    holdout_fraction: float = 0.2  # share of that level's categories (with interactions) held out per fold
    min_history: int = 3
    min_validation_users: int = 20  # folds with fewer users are skipped; none left = equal weights, score fusion
    n_folds: int = 2  # seeded validation folds
    # Keep a fusion only if its gain over the best single member, measured out of fold (the fusion and weights
    # searched on the other folds, scored on this one), has a paired bootstrap CI over validation users above 0
    # at this confidence; otherwise the ensemble is that member alone. None = no gate. Gains measured on the
    # users the weights were searched on are biased upwards (the search picks what won there): on Amazon
    # Scientific such a gain had a CI above 0 and still lost on the test categories.
    gate_confidence: float | None = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.members, list):
            object.__setattr__(self, "members", tuple(self.members))
        if len(self.members) < 2:
            raise ConfigError(f"an ensemble needs at least two members, got {list(self.members)}")
        if len(set(self.members)) != len(self.members):
            raise ConfigError(f"ensemble members must be distinct, got {list(self.members)}")
        bad = [m for m in self.members if m in EXCLUDED_MEMBERS]
        if bad:
            raise ConfigError(f"{bad[0]!r} cannot be an ensemble member")
        unknown = [f for f in self.fusions if f not in FUSIONS]
        if unknown or not self.fusions:
            raise ConfigError(f"fusions must be a non-empty subset of {FUSIONS}, got {self.fusions}")
        if not self.weight_grid or min(self.weight_grid) < 0 or max(self.weight_grid) <= 0:
            raise ConfigError(f"weight_grid must hold non-negative values, one positive, got {self.weight_grid}")
        if self.rounds < 1 or self.n_folds < 1:
            raise ConfigError(f"rounds and n_folds must be >= 1, got {self.rounds} and {self.n_folds}")
        if self.rrf_k < 0:
            raise ConfigError(f"rrf_k must be >= 0, got {self.rrf_k}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ConfigError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.gate_confidence is not None and not 0.0 < self.gate_confidence < 1.0:
            raise ConfigError(f"gate_confidence must be in (0, 1) or None, got {self.gate_confidence}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EnsembleSettings:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def fusion_parts(scores: np.ndarray, fusion: str, rrf_k: float = 60.0) -> np.ndarray:
    """One member's (n_users, n_candidates) scores turned into what `fusion` adds up (higher = better).

    >>> fusion_parts(np.array([[3.0, 1.0, 2.0]]), "borda").round(3).tolist()
    [[1.0, 0.0, 0.5]]
    >>> fusion_parts(np.array([[3.0, 1.0, 2.0]]), "rrf", rrf_k=0).round(3).tolist()
    [[1.0, 0.333, 0.5]]
    """
    x = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.all():  # -inf/nan (e.g. masked items) rank last
        low = np.where(finite, x, np.inf).min(axis=1, keepdims=True)
        x = np.where(finite, x, np.where(np.isfinite(low), low, 0.0) - 1.0)
    if fusion == "score":
        std = x.std(axis=1, keepdims=True)
        std[std == 0] = 1.0
        return (x - x.mean(axis=1, keepdims=True)) / std
    rank = rankdata(-x, axis=1, method="average")  # 1 = best; ties share their mean rank
    if fusion == "rrf":
        return 1.0 / (rrf_k + rank)
    if fusion == "borda":
        n = x.shape[1]
        return (n - rank) / max(n - 1, 1)
    raise ConfigError(f"fusion must be one of {FUSIONS}, got {fusion!r}")


class EnsembleRecommender(Recommender):
    """Weighted fusion of member recommenders; the weights come from validation categories, never test ones."""

    name = "ensemble"
    settings_class = EnsembleSettings
    _state = ("weights_",)

    def __init__(
        self,
        settings: EnsembleSettings | None = None,
        *,
        embeddings: EmbeddingSource | None = None,
        build_model: ModelBuilder | None = None,
    ) -> None:
        super().__init__(settings or EnsembleSettings())
        self._embeddings = embeddings
        # builds a member from its registered name; the registry passes its own (`registry.ensemble_model`)
        self._build_model = build_model

    # -- fitting ------------------------------------------------------------------------------------------
    def _build_member(self, name: str) -> Recommender:
        if self._build_model is None:
            raise ConfigError(
                "this ensemble cannot build its members: make it with zsrec.models.registry.ensemble_model "
                "(or build_model('ensemble', ...)), which passes it a model builder"
            )
        return self._build_model(name)

    def fit(self, data: Dataset) -> Self:
        s = self.settings
        folds, level = tuning_folds(data, s)
        self.tuning_ = self._tune(folds) | {"validation_level": level}
        self.fusion_ = self.tuning_["fusion"]
        self.weights_ = np.asarray(self.tuning_["weights"], dtype=np.float64)
        self.members_ = [self._build_member(name).fit(data) for name in s.members]
        self._remember(data)
        return self

    def _tune(self, folds: list[EvalSplit]) -> dict[str, Any]:
        """Fit members on each fold's training part, then search (fusion, weights) on the fold's categories."""
        s = self.settings
        if not folds:
            return {
                "fusion": "score",
                "weights": [1.0] * len(s.members),
                "tuned": False,
                "reason": f"no validation fold had {s.min_validation_users} users",
            }
        member_scores = []  # per fold: (n_members, n_users, n_items)
        for fold in folds:
            users, items = fold.test_users, fold.new_items
            member_scores.append(
                np.stack([self._build_member(m).fit(fold.train).score(users, items) for m in s.members])
            )
        parts = {f: self._fusion_parts(member_scores, f) for f in s.fusions}
        per_user = {f: self._per_user_fn(folds, parts[f]) for f in s.fusions}
        fusion, searches = self._select(per_user, self._masks(folds, None))
        best = searches[fusion]
        gate = self._gate(self._out_of_fold(folds, per_user))
        weights = best["weights"] if gate["kept"] else np.eye(len(s.members))[int(np.argmax(best["single"]))].tolist()
        return {
            "fusion": fusion,
            "weights": weights,
            "gate": gate,
            "tuned": True,
            "validation_ndcg@10": best["ndcg@10"],
            "member_validation_ndcg@10": dict(zip(s.members, best["single"], strict=True)),
            "searches": {f: {k: v for k, v in r.items() if k != "single"} for f, r in searches.items()},
            "validation_folds": [
                {
                    "categories": list(f.heldout_categories),
                    "users": len(f.test_users),
                    "items": len(f.new_items),
                }
                for f in folds
            ],
        }

    def _gate(self, held_out: dict[str, Any]) -> dict[str, Any]:
        """Whether the searched fusion beats the best single member, out of fold, beyond noise.

        `held_out` holds per-user NDCG@10 on the users of the validation parts left out of the search:
        `per_user` under the (fusion, weights) searched without them, `single_per_user` under the member that
        was best without them.
        """
        s = self.settings
        diff = held_out["per_user"] - held_out["single_per_user"]
        extra = {k: v for k, v in held_out.items() if k not in ("per_user", "single_per_user")}
        return paired_gate(diff, s.gate_confidence, s.seed) | extra

    def _fusion_parts(self, member_scores: list[np.ndarray], fusion: str) -> list[np.ndarray]:
        return [np.stack([fusion_parts(x, fusion, self.settings.rrf_k) for x in scores]) for scores in member_scores]

    def _per_user_fn(self, folds: list[EvalSplit], parts: list[np.ndarray]) -> Any:
        """weights -> per-fold arrays of per-user NDCG@10 (memoised: the searches revisit the same weights)."""
        seed, memo = self.settings.seed, {}

        def per_user(weights: np.ndarray) -> list[np.ndarray]:
            key = tuple(np.asarray(weights, dtype=np.float64).tolist())
            if key not in memo:
                out = []
                for fold, p in zip(folds, parts, strict=True):
                    fused = np.tensordot(np.asarray(key), p, axes=1)
                    out.append(new_pool_ndcg(fused, fold, seed=seed))
                memo[key] = out
            return memo[key]

        return per_user

    def _masks(self, folds: list[EvalSplit], held_out: int | None) -> list[np.ndarray]:
        """Per fold, the validation users a search may look at: all of them but those of part `held_out`."""
        sizes = [len(f.test_users) for f in folds]
        if held_out is None:
            return [np.ones(n, dtype=bool) for n in sizes]
        return [~m for m in held_out_masks(sizes, held_out, self.settings.seed)]

    def _select(self, per_user: dict[str, Any], masks: list[np.ndarray]) -> tuple[str, dict[str, dict[str, Any]]]:
        """Search every fusion on the users in `masks`; the fusion with the best validation NDCG@10 wins."""
        fusions = self.settings.fusions
        searches = {f: self._search(per_user[f], masks) for f in fusions}
        return max(fusions, key=lambda f: (searches[f]["ndcg@10"], -fusions.index(f))), searches

    def _out_of_fold(self, folds: list[EvalSplit], per_user: dict[str, Any]) -> dict[str, Any]:
        """Each validation part scored by the fusion and the single member chosen without it."""
        fused, single, chosen = [], [], []
        for part in range(n_parts(len(folds))):
            searched = self._masks(folds, part)
            fusion, searches = self._select(per_user, searched)
            search = searches[fusion]
            alone = np.eye(len(self.settings.members))[int(np.argmax(search["single"]))]
            left_out = [~m for m in searched]
            fused.append(_masked(per_user[fusion](np.asarray(search["weights"])), left_out))
            single.append(_masked(per_user[fusion](alone), left_out))
            chosen.append({"fusion": fusion, "weights": search["weights"]})
        return {"per_user": np.concatenate(fused), "single_per_user": np.concatenate(single), "out_of_fold": chosen}

    def _search(self, per_user: Any, masks: list[np.ndarray]) -> dict[str, Any]:
        """Coordinate ascent on mean validation NDCG@10 over the users in `masks`, from the best single member."""
        s = self.settings

        def value(weights: np.ndarray) -> float:
            return float(np.mean([v[m].mean() for v, m in zip(per_user(weights), masks, strict=True) if m.any()]))

        n = len(s.members)
        single = [value(np.eye(n)[m]) for m in range(n)]
        weights = np.eye(n)[int(np.argmax(single))]
        best = max(single)
        trace = [{"weights": weights.tolist(), "ndcg@10": best}]
        for _ in range(s.rounds):
            moved = False
            for m in range(n):
                for w in s.weight_grid:
                    if w == weights[m]:
                        continue
                    trial = weights.copy()
                    trial[m] = w
                    if trial.sum() <= 0:
                        continue
                    v = value(trial)
                    if v > best + s.min_gain:
                        weights, best, moved = trial, v, True
                        trace.append({"weights": weights.tolist(), "ndcg@10": best})
            if not moved:
                break
        return {"weights": weights.tolist(), "ndcg@10": best, "single": single, "trace": trace}

    # -- scoring ------------------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        fused = np.zeros((len(users), len(items)), dtype=np.float64)
        for w, member in zip(self.weights_, self.members_, strict=True):
            if w > 0:
                fused += w * fusion_parts(member.score(users, items), self.fusion_, self.settings.rrf_k)
        return fused

    # -- persistence --------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = super().get_config() | {"settings": asdict(self.settings)}
        if hasattr(self, "tuning_"):
            config["tuning"] = self.tuning_
            config["member_folders"] = _member_folders(self.settings.members)
        return config

    def save(self, directory: str | Path) -> None:
        """Members first, each in `members/<i>-<name>/` by its own `save`; then weights and config.json."""
        self._check_fitted()
        directory = Path(directory)
        for folder, member in zip(_member_folders(self.settings.members), self.members_, strict=True):
            member.save(directory / folder)
        super().save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        raise ConfigError(
            f"{directory} holds an ensemble, made of other saved models: load it with zsrec.models.registry.load_model"
        )

    @classmethod
    def load_with_members(cls, directory: str | Path, load_member: ModelLoader) -> Self:
        """`load`, each member read from its subfolder by `load_member` (the registry's `load_model`)."""
        model = super().load(directory)
        config = json.loads((Path(directory) / "config.json").read_text())
        model.tuning_ = config.get("tuning", {})
        model.fusion_ = model.tuning_.get("fusion", "score")
        model.members_ = [load_member(Path(directory) / folder) for folder in config["member_folders"]]
        if len(model.members_) != len(model.weights_):
            raise ConfigError(f"{directory}: {len(model.members_)} member folders for {len(model.weights_)} weights")
        return model


def _masked(per_fold: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([v[m] for v, m in zip(per_fold, masks, strict=True)])


def _member_folders(members: tuple[str, ...]) -> list[str]:
    return [f"members/{i}-{name}" for i, name in enumerate(members)]
