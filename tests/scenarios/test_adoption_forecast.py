"""Calibrated P(user adopts category) and the forecast built on it, on the two-department shop."""

from __future__ import annotations

import numpy as np
import pytest

from zsrec.data.splits import SplitSettings, leave_category_out_split
from zsrec.errors import ConfigError
from zsrec.scenarios.adoption import AdoptionSettings, adoption_labels, eligible_users, fit_category_adoption
from zsrec.scenarios.forecast import (
    baseline_forecasts,
    categories_first_sold_after,
    correlation_report,
    forecast_categories,
)

NEW = ("Outdoor > Lanterns", "Kitchen > Mugs")


@pytest.fixture(scope="module")
def split(shop2):
    return leave_category_out_split(shop2, SplitSettings(level=2, categories=NEW, min_history=3))


@pytest.fixture(scope="module")
def adoption(split, embeddings):
    return fit_category_adoption(split.train, AdoptionSettings(level=2, validation_folds=3), embeddings)


def test_calibration_never_sees_the_new_categories(adoption) -> None:
    assert adoption.validation["categories"]
    assert not set(adoption.validation["categories"]) & set(NEW)


def test_campers_are_likely_to_adopt_lanterns_and_cooks_mugs(adoption, split) -> None:
    users = eligible_users(split.train, 3)
    p = adoption.probabilities(users, list(NEW))
    campers = users % 2 == 0
    assert p[campers, 0].min() > p[~campers, 0].max()  # lanterns: every camper above every cook
    assert p[~campers, 1].min() > p[campers, 1].max()  # mugs: the other way round
    assert p[campers, 0].mean() > 0.3 > 0.1 > p[~campers, 0].mean()


def test_forecast_is_close_to_the_real_number_of_adopters(adoption, shop2, split) -> None:
    users = eligible_users(split.train, 3)
    actual = adoption_labels(shop2, users, 2, list(NEW)).sum(axis=0)
    got = [f.expected_adopters for f in forecast_categories(adoption, list(NEW))]
    # about 3 of 4 of each department's 30 users adopt each of its categories
    assert np.all(actual >= 10)
    # within 30%: calibration pairs come from validation folds, where removing the held-out categories also
    # shortens their adopters' histories, which biases the forecast a little low on a shop this small
    assert np.all(np.abs(np.asarray(got) - actual) <= 0.3 * actual)


def test_baselines_cover_every_category(adoption) -> None:
    out = baseline_forecasts(adoption, list(NEW))
    assert set(out) == {"known-mean", "known-rate-x-size", "nearest-known"}
    assert all(len(v) == 2 and np.all(v > 0) for v in out.values())
    assert out["known-mean"][0] == out["known-mean"][1]


def test_unknown_category_is_a_clear_error(adoption) -> None:
    with pytest.raises(ConfigError, match="not found"):
        adoption.probabilities(np.array([0]), ["Garden > Hoses"])


def test_correlation_report_known_values() -> None:
    r = correlation_report(np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20.0, 40.0, 30.0]), n_resamples=50)
    assert r["spearman"] == pytest.approx(0.8)
    assert r["mae"] == pytest.approx((9 + 18 + 37 + 26) / 4)
    constant = correlation_report(np.array([5.0, 5.0, 5.0]), np.array([1.0, 2.0, 3.0]), n_resamples=10)
    assert np.isnan(constant["spearman"])


def test_categories_first_sold_after_a_cutoff(shop2) -> None:
    ts = shop2.interactions["timestamp"].to_numpy()
    cut = float(np.median(ts))
    before, late = categories_first_sold_after(shop2, 2, cut)
    assert before.interactions["timestamp"].max() < cut
    cats_before = set(shop2.category_at(2)[before.interactions["item"].to_numpy()])
    assert not set(late) & cats_before


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="calibration"):
        AdoptionSettings(calibration="magic")
    with pytest.raises(ConfigError, match="level"):
        AdoptionSettings(level=0)
