"""Trend forecast: how many users will adopt a category that has no interactions yet.

The forecast is the expected number of adopters, Σ_u P(u adopts c), over the users with enough history;
with calibrated probabilities the sum is itself calibrated. Baselines a shop could compute without zsrec:
the mean number of adopters of its known categories (one number for every new category), that mean scaled
by the new category's item count, and the adopters of the known category whose items read most alike.

`choose_forecast` picks, per dataset, between the calibrated sum and the per-item baseline by their errors on
validation categories held out of the known data, and gives the chosen forecast an interval from the same
validation errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.errors import ConfigError
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.scenarios.adoption import (
    AdoptionSettings,
    CategoryAdoption,
    adoption_folds,
    adoption_labels,
    eligible_users,
    fit_category_adoption,
)

BASELINES = ("known-mean", "known-rate-x-size", "nearest-known")
PER_ITEM = "per-item baseline"  # adopters per item of the known categories × the category's item count
CALIBRATED = "calibrated probabilities"  # Σ_u P(u adopts c)
# The simpler method first: on a tie it is the one chosen.
FORECAST_METHODS = (PER_ITEM, CALIBRATED)


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


# -- choosing the forecast method on validation categories ---------------------------------------------------
@dataclass(frozen=True)
class ForecastValidation:
    """Both methods' forecasts of validation categories held out of the known data, and what they got wrong.

    One record per (fold, category): a category drawn in two folds is forecast twice, from two trainings.
    """

    categories: tuple[str, ...]  # per record
    real: tuple[int, ...]  # per record: its adopters among the users the forecasts sum over
    forecasts: dict[str, tuple[float, ...]]  # method -> per record
    errors: dict[str, float]  # method -> mean |log((forecast + 1) / (real + 1))| over the records
    method: str  # the method with the smaller error (ties go to the per-item baseline)

    @property
    def n_categories(self) -> int:
        """Distinct validation categories behind the records."""
        return len(set(self.categories))


@dataclass(frozen=True)
class ChosenForecast:
    """A category's forecast by the method chosen on validation categories, with an interval."""

    category: str
    adopters: float  # the chosen method's forecast
    low: float  # the interval, see `chosen_forecast`
    high: float
    coverage: float  # share of validation ratios the interval spans (0.8: 10th to 90th percentile)
    method: str
    by_method: dict[str, float]  # every method's forecast of this category
    n_validation: int  # distinct validation categories the method was chosen on
    validation_errors: dict[str, float]  # method -> mean absolute log ratio on them


def log_ratio_errors(real: np.ndarray, forecasts: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean |log((forecast + 1) / (real + 1))| per method; the +1 keeps a category with no adopter finite.

    >>> log_ratio_errors(np.array([9.0, 99.0]), {"a": np.array([9.0, 99.0]), "b": np.array([99.0, 9.0])})
    {'a': 0.0, 'b': 2.302585092994046}
    """
    r = np.log1p(np.asarray(real, dtype=np.float64))
    return {m: float(np.abs(np.log1p(np.asarray(f, dtype=np.float64)) - r).mean()) for m, f in forecasts.items()}


def choose_method(errors: dict[str, float]) -> str:
    """The method with the smallest error; ties go to the earlier one in FORECAST_METHODS (the simpler)."""
    order = [m for m in FORECAST_METHODS if m in errors] + [m for m in errors if m not in FORECAST_METHODS]
    if not order:
        raise ConfigError("no forecast method to choose from")
    return min(order, key=lambda m: errors[m])


def per_item_rate(data: Dataset, level: int, min_history: int) -> float:
    """Adopters per item over the level-`level` categories that have an adopter among the eligible users.

    Times a new category's item count, this is the `known-rate-x-size` baseline; categories without
    interactions in `data` (the new ones) take no part.
    """
    users = eligible_users(data, min_history)
    names, n_items = np.unique(data.category_at(level).astype(str), return_counts=True)
    real = names != ""
    adopted = adoption_labels(data, users, level, names[real].tolist()).sum(axis=0)
    active = adopted > 0  # a known category nobody touched says nothing about demand
    return float(adopted[active].sum() / max(int(n_items[real][active].sum()), 1))


def category_sizes(data: Dataset, level: int, categories: Sequence[str]) -> np.ndarray:
    """Items of each level-`level` category in the catalog (sold or not)."""
    names, counts = np.unique(data.category_at(level).astype(str), return_counts=True)
    size = dict(zip(names.tolist(), counts.tolist(), strict=True))
    return np.asarray([size.get(c, 0) for c in categories], dtype=np.int64)


def validate_forecast_methods(
    known: Dataset, embeddings: EmbeddingSource, settings: AdoptionSettings
) -> ForecastValidation:
    """Forecast validation categories held out of `known` (`validation_category_splits`, the same draws the
    calibration uses) with both methods, each fold's methods fitted on that fold's training data alone
    (the calibration too: a nested fit), and score them against the adopters really seen in `known`."""
    folds, level = adoption_folds(known, settings)
    cats: list[str] = []
    real: list[int] = []
    found: dict[str, list[float]] = {m: [] for m in FORECAST_METHODS}
    for fold in folds:
        held = list(fold.heldout_categories)
        adoption = fit_category_adoption(fold.train, settings, embeddings)
        users = eligible_users(fold.train, settings.min_history)
        real += adoption_labels(known, users, level, held).sum(axis=0).astype(int).tolist()
        found[CALIBRATED] += [f.expected_adopters for f in forecast_categories(adoption, held, top=0)]
        rate = per_item_rate(fold.train, level, settings.min_history)
        found[PER_ITEM] += (rate * category_sizes(known, level, held)).tolist()
        cats += held
    errors = log_ratio_errors(np.asarray(real), {m: np.asarray(f) for m, f in found.items()})
    return ForecastValidation(
        tuple(cats), tuple(real), {m: tuple(f) for m, f in found.items()}, errors, choose_method(errors)
    )


def chosen_forecast(
    validation: ForecastValidation, category: str, by_method: dict[str, float], *, coverage: float = 0.8
) -> ChosenForecast:
    """The validation's chosen method's forecast of `category`, with an interval.

    The interval applies the ((1 - coverage) / 2, (1 + coverage) / 2) quantiles (10th and 90th for 0.8) of
    the chosen method's validation ratios (real + 1) / (forecast + 1) to the point forecast:
    (forecast + 1) × ratio − 1, floored at 0. When the validation ratios all lie on one side of 1 (the method
    is biased there), the interval is widened to reach the point forecast, so it always contains it.
    """
    if not 0.0 < coverage < 1.0:
        raise ConfigError(f"coverage must be in (0, 1), got {coverage}")
    method = validation.method
    if method not in by_method:
        raise ConfigError(f"no {method!r} forecast given for {category!r} (got {sorted(by_method)})")
    point = float(by_method[method])
    ratios = (np.asarray(validation.real, dtype=np.float64) + 1) / (np.asarray(validation.forecasts[method]) + 1)
    q_low, q_high = np.quantile(ratios, [(1 - coverage) / 2, (1 + coverage) / 2])
    low = max(0.0, min(point, (point + 1) * float(q_low) - 1))
    high = max(point, (point + 1) * float(q_high) - 1)
    return ChosenForecast(
        category,
        point,
        low,
        high,
        coverage,
        method,
        {m: float(v) for m, v in by_method.items()},
        validation.n_categories,
        dict(validation.errors),
    )


def choose_forecast(
    known: Dataset,
    categories: Sequence[str],
    embeddings: EmbeddingSource,
    settings: AdoptionSettings,
    *,
    calibrated: Sequence[float] | None = None,
    n_items: Sequence[int] | None = None,
    coverage: float = 0.8,
) -> tuple[list[ChosenForecast], ForecastValidation]:
    """Forecast new categories of `known` (categories without interactions in it) by whichever of the
    calibrated sum and the per-item baseline did better on validation categories; deterministic for
    `settings.seed`.

    Args:
        calibrated: the calibrated forecasts of `categories` when already computed on `known` (saves a fit).
        n_items: the categories' item counts, for categories not in the catalog (a text); default: counted.
    """
    level = settings.level
    validation = validate_forecast_methods(known, embeddings, settings)
    if calibrated is None:
        adoption = fit_category_adoption(known, settings, embeddings)
        calibrated = [f.expected_adopters for f in forecast_categories(adoption, list(categories), top=0)]
    sizes = category_sizes(known, level, categories) if n_items is None else np.asarray(n_items, dtype=np.int64)
    if not len(calibrated) == len(sizes) == len(categories):
        raise ConfigError(f"{len(categories)} categories, {len(calibrated)} forecasts and {len(sizes)} sizes")
    rate = per_item_rate(known, level, settings.min_history)
    chosen = [
        chosen_forecast(validation, c, {CALIBRATED: float(p), PER_ITEM: rate * float(n)}, coverage=coverage)
        for c, p, n in zip(categories, calibrated, sizes, strict=True)
    ]
    return chosen, validation


def without_categories(data: Dataset, level: int, categories: Sequence[str]) -> Dataset:
    """`data` with the interactions of the level-`level` `categories` hidden (as if they were new)."""
    hidden = np.isin(data.category_at(level)[data.interactions["item"].to_numpy()], list(categories))
    return data.with_interactions(data.interactions[~hidden])
