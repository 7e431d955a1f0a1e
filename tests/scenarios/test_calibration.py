"""Calibrators and ECE on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from zsrec.errors import ConfigError
from zsrec.scenarios.calibration import (
    Calibrator,
    expected_calibration_error,
    fit_calibrator,
    reliability_bins,
)


def test_ece_is_zero_when_each_bin_happens_as_often_as_predicted() -> None:
    probs = np.array([0.1] * 10 + [0.7] * 10)
    labels = np.array([1] + [0] * 9 + [1] * 7 + [0] * 3)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)


def test_ece_weighs_each_bin_by_its_pairs() -> None:
    # bin 0.9: predicted .9, observed 0 (4 pairs); bin 0.1: predicted .1, observed .1 (10 pairs) -> 4/14 * .9
    probs = np.array([0.9] * 4 + [0.1] * 10)
    labels = np.array([0] * 4 + [1] + [0] * 9)
    assert expected_calibration_error(probs, labels) == pytest.approx(4 / 14 * 0.9)


def test_reliability_bins_count_every_pair_once() -> None:
    probs = np.array([0.0, 0.05, 0.5, 0.99, 1.0])
    bins = reliability_bins(probs, np.array([0, 0, 1, 1, 1]), n_bins=10)
    assert sum(b.count for b in bins) == 5
    assert bins[0].count == 2 and bins[5].count == 1 and bins[9].count == 2


def test_platt_recovers_a_known_logistic_relation() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=20000)
    labels = rng.random(20000) < 1 / (1 + np.exp(-(2.0 * scores - 1.0)))
    c = fit_calibrator(scores, labels, "platt")
    assert c.a == pytest.approx(2.0, abs=0.1) and c.b == pytest.approx(-1.0, abs=0.1)
    assert expected_calibration_error(c.predict(scores), labels) < 0.02


def test_isotonic_is_monotone_and_fixes_a_miscalibrated_score() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(5000)
    labels = rng.random(5000) < scores**3  # the raw score overstates the rate
    assert expected_calibration_error(scores, labels) > 0.15
    c = fit_calibrator(scores, labels, "isotonic")
    p = c.predict(np.sort(scores))
    assert np.all(np.diff(p) >= 0)
    assert expected_calibration_error(c.predict(scores), labels) < 0.03


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="same length"):
        fit_calibrator(np.zeros(3), np.zeros(2))
    with pytest.raises(ConfigError, match="0 or 1"):
        expected_calibration_error(np.array([0.5]), np.array([2]))
    with pytest.raises(ConfigError, match="method"):
        Calibrator("magic")
    with pytest.raises(ConfigError, match="both adopters"):
        fit_calibrator(np.array([0.1, 0.2]), np.array([0, 0]), "platt")
