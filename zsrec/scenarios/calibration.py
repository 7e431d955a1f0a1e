"""Turning scores into probabilities one can add up, and measuring whether they are honest.

Calibrators are fitted on validation categories and applied to new ones. Both kinds keep their learned
values as plain arrays (no pickled estimators), so a calibrator is data, not code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.errors import ConfigError

METHODS = ("platt", "isotonic")


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from a real score to a probability.

    platt: p = sigmoid(a·s + b). isotonic: p = the step function through (`x`, `y`), linear between knots.
    """

    method: str
    a: float = 1.0
    b: float = 0.0
    x: np.ndarray | None = None  # isotonic knots (ascending scores)
    y: np.ndarray | None = None  # isotonic probabilities at the knots

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"calibration method must be one of {METHODS}, got {self.method!r}")
        if self.method == "isotonic" and (self.x is None or self.y is None or len(self.x) != len(self.y)):
            raise ConfigError("an isotonic calibrator needs knots x and y of equal length")

    def predict(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            return _sigmoid(self.a * s + self.b)
        assert self.x is not None and self.y is not None  # checked in __post_init__
        return np.interp(s, self.x, self.y)


def fit_calibrator(scores: np.ndarray, labels: np.ndarray, method: str = "platt") -> Calibrator:
    """Fit `method` so that predict(scores) ≈ P(label = 1 | score).

    >>> c = fit_calibrator(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1]), "isotonic")
    >>> c.predict(np.array([0.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    s, y = _check_pairs(scores, labels)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(y)) < 2:
            raise ConfigError("calibration needs both adopters and non-adopters among the validation pairs")
        model = LogisticRegression(C=1e6, max_iter=1000).fit(s[:, None], y)
        return Calibrator("platt", a=float(model.coef_[0, 0]), b=float(model.intercept_[0]))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y)
        return Calibrator(
            "isotonic", x=np.asarray(model.X_thresholds_, dtype=np.float64), y=np.asarray(model.y_thresholds_)
        )
    raise ConfigError(f"calibration method must be one of {METHODS}, got {method!r}")


@dataclass(frozen=True)
class ReliabilityBin:
    low: float  # bin edges of the predicted probability
    high: float
    count: int  # pairs in the bin
    mean_predicted: float  # nan for an empty bin
    observed_rate: float  # share of positives; nan for an empty bin


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]: how often what was predicted at about p really happened."""
    p, y = _check_pairs(probs, labels)
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = which == b
        n = int(mask.sum())
        out.append(
            ReliabilityBin(
                float(edges[b]),
                float(edges[b + 1]),
                n,
                float(p[mask].mean()) if n else float("nan"),
                float(y[mask].mean()) if n else float("nan"),
            )
        )
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE: Σ_bins (n_b / n) · |mean predicted − observed rate|, equal-width bins.

    >>> expected_calibration_error(np.array([0.2, 0.2, 0.2, 0.2, 0.2]), np.array([1, 0, 0, 0, 0]))
    0.0
    """
    bins = reliability_bins(probs, labels, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return float("nan")
    return float(sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in bins if b.count) / total)


def _check_pairs(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.shape != y.shape:
        raise ConfigError(f"scores and labels must have the same length, got {s.size} and {y.size}")
    if s.size == 0:
        raise ConfigError("calibration needs at least one (score, label) pair")
    if not np.isfinite(s).all():
        raise ConfigError("scores must be finite")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ConfigError("labels must be 0 or 1")
    return s, y


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))
