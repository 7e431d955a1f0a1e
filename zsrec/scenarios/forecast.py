"""Trend forecast: how many users will adopt a category that has no interactions yet.

The forecast is the expected number of adopters, Σ_u P(u adopts c), over the users with enough history;
with calibrated probabilities the sum is itself calibrated. Baselines a shop could compute without zsrec:
the mean number of adopters of its known categories (one number for every new category), that mean scaled
by the new category's item count, and the adopters of the known category whose items read most alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.scenarios.adoption import CategoryAdoption, adoption_labels, eligible_users

BASELINES = ("known-mean", "known-rate-x-size", "nearest-known")


@dataclass(frozen=True)
class Forecast:
    category: str
    expected_adopters: float  # Σ_u P(u adopts)
    n_users: int  # users the sum runs over
    top_users: tuple[tuple[str, float], ...]  # the likeliest adopters (user id, probability)


def forecast_categories(
    adoption: CategoryAdoption, categories: list[str] | tuple[str, ...], *, top: int = 5
) -> list[Forecast]:
    """Expected adopters of each category (a level-`level` path) among the users with enough history."""
    data = adoption.scorer.data
    users = eligible_users(data, adoption.settings.min_history)
    probs = adoption.probabilities(users, categories)
    return [_forecast(c, probs[:, j], users, data, top) for j, c in enumerate(categories)]


def forecast_text(adoption: CategoryAdoption, vector: np.ndarray, n_items: int, *, top: int = 5) -> Forecast:
    """Expected adopters of a category described only by a text vector, assumed to hold `n_items` items."""
    data = adoption.scorer.data
    users = eligible_users(data, adoption.settings.min_history)
    return _forecast("(text)", adoption.text_probabilities(users, vector, n_items), users, data, top)


def _forecast(name: str, probs: np.ndarray, users: np.ndarray, data: Dataset, top: int) -> Forecast:
    order = np.argsort(-probs, kind="stable")[:top]
    ids = data.users["user_id"].to_numpy()
    return Forecast(name, float(probs.sum()), len(users), tuple((str(ids[users[j]]), float(probs[j])) for j in order))


def baseline_forecasts(adoption: CategoryAdoption, categories: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
    """The three baselines' expected adopters for `categories`, from the known categories in the scorer's data."""
    scorer = adoption.scorer
    data = scorer.data
    users = eligible_users(data, adoption.settings.min_history)
    rows = scorer.category_rows(categories)
    known_rows = np.flatnonzero(scorer.real & ~np.isin(np.arange(len(scorer.names)), rows))
    adopted = adoption_labels(data, users, scorer.level, scorer.names[known_rows].tolist()).sum(axis=0)
    active = adopted > 0  # a known category nobody touched says nothing about demand
    known_rows, adopted = known_rows[active], adopted[active].astype(np.float64)
    mean = float(adopted.mean()) if len(adopted) else 0.0
    rate = float(adopted.sum() / max(scorer.n_items[known_rows].sum(), 1))
    centroids = scorer.model.category_vectors_
    nearest = np.argmax(centroids[rows] @ centroids[known_rows].T, axis=1) if len(known_rows) else None
    return {
        "known-mean": np.full(len(rows), mean),
        "known-rate-x-size": rate * scorer.n_items[rows].astype(np.float64),
        "nearest-known": adopted[nearest] if nearest is not None else np.zeros(len(rows)),
    }


def correlation_report(
    predicted: np.ndarray, actual: np.ndarray, *, n_resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Spearman and Pearson between predicted and actual adopters, with a bootstrap 95% CI over categories,
    and the mean absolute error. A constant prediction has no correlation (nan)."""
    from scipy.stats import pearsonr, spearmanr

    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    out = {"n_categories": float(len(p)), "mae": float(np.abs(p - a).mean())}
    constant = np.ptp(p) == 0 or np.ptp(a) == 0
    for name, fn in (("spearman", spearmanr), ("pearson", pearsonr)):
        out[name] = float("nan") if constant else float(fn(p, a)[0])
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(0 if constant else n_resamples):
            idx = rng.integers(0, len(p), len(p))
            if np.ptp(p[idx]) > 0 and np.ptp(a[idx]) > 0:
                values.append(float(fn(p[idx], a[idx])[0]))
        lo, hi = np.quantile(values, [0.025, 0.975]) if values else (float("nan"), float("nan"))
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = float(lo), float(hi)
    return out


def categories_first_sold_after(data: Dataset, level: int, cutoff: float) -> tuple[Dataset, list[str]]:
    """The data before `cutoff`, and the level-`level` categories whose first interaction comes after it
    (new categories a shop launched later: the ones to forecast from what it knew at `cutoff`)."""
    ts = data.interactions["timestamp"].to_numpy()
    cats = data.category_at(level)[data.interactions["item"].to_numpy()]
    before = ts < cutoff
    seen_before = set(cats[before].tolist())
    late = sorted({c for c in cats[~before].tolist() if c and c not in seen_before})
    return data.with_interactions(data.interactions[before]), late
