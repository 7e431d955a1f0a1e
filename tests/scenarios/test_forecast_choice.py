"""Choosing between the calibrated sum and the per-item baseline on validation categories, and the interval."""

from __future__ import annotations

import numpy as np
import pytest

from zsrec.data.splits import SplitSettings, leave_category_out_split
from zsrec.errors import ConfigError
from zsrec.scenarios.adoption import AdoptionSettings, fit_category_adoption
from zsrec.scenarios.forecast import (
    CALIBRATED,
    PER_ITEM,
    ForecastValidation,
    baseline_forecasts,
    category_sizes,
    choose_forecast,
    choose_method,
    chosen_forecast,
    log_ratio_errors,
    per_item_rate,
    without_categories,
)
from zsrec.scenarios.report import chosen_forecast_line

NEW = ("Outdoor > Lanterns", "Kitchen > Mugs")
SETTINGS = AdoptionSettings(level=2, validation_folds=3)


def _validation(real: list[int], per_item: list[float], calibrated: list[float]) -> ForecastValidation:
    forecasts = {PER_ITEM: np.asarray(per_item), CALIBRATED: np.asarray(calibrated)}
    errors = log_ratio_errors(np.asarray(real), forecasts)
    return ForecastValidation(
        tuple(f"c{i}" for i in range(len(real))),
        tuple(real),
        {m: tuple(v.tolist()) for m, v in forecasts.items()},
        errors,
        choose_method(errors),
    )


def test_log_ratio_errors_known_values() -> None:
    errors = log_ratio_errors(np.array([9, 99]), {"a": np.array([9.0, 99.0]), "b": np.array([99.0, 9.0])})
    assert errors["a"] == 0.0
    assert errors["b"] == pytest.approx(np.log(10))


def test_the_method_with_the_smaller_error_is_chosen_and_ties_go_to_the_baseline() -> None:
    assert choose_method({PER_ITEM: 0.5, CALIBRATED: 0.2}) == CALIBRATED
    assert choose_method({CALIBRATED: 0.9, PER_ITEM: 0.2}) == PER_ITEM
    assert choose_method({CALIBRATED: 0.3, PER_ITEM: 0.3}) == PER_ITEM
    with pytest.raises(ConfigError):
        choose_method({})


def test_interval_comes_from_the_chosen_methods_validation_ratios() -> None:
    # calibrated is exact on 8 of 10 validation categories, off by ×2 once each way
    real = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    calibrated = [r + 0.0 for r in real]
    calibrated[0], calibrated[9] = 21.0, 50.0
    val = _validation(real, [5.0] * 10, calibrated)
    assert val.method == CALIBRATED and val.n_categories == 10
    got = chosen_forecast(val, "Garden > Hoses", {CALIBRATED: 99.0, PER_ITEM: 5.0})
    ratios = (np.asarray(real) + 1) / (np.asarray(calibrated) + 1)
    lo, hi = np.quantile(ratios, [0.1, 0.9])
    assert got.method == CALIBRATED and got.adopters == 99.0
    assert got.low == pytest.approx(100 * lo - 1) and got.high == pytest.approx(100 * hi - 1)
    assert got.low < got.adopters < got.high
    assert got.n_validation == 10 and got.validation_errors == val.errors


def test_interval_reaches_the_point_when_the_method_is_biased() -> None:
    val = _validation([10, 20, 30], [30.0, 60.0, 90.0], [100.0, 100.0, 100.0])  # per-item: always ×3 too high
    got = chosen_forecast(val, "x", {PER_ITEM: 60.0, CALIBRATED: 1.0})
    assert got.method == PER_ITEM
    assert got.low < got.high == got.adopters == 60.0
    with pytest.raises(ConfigError, match="coverage"):
        chosen_forecast(val, "x", {PER_ITEM: 60.0}, coverage=1.0)
    with pytest.raises(ConfigError, match="per-item baseline"):
        chosen_forecast(val, "x", {CALIBRATED: 1.0})


@pytest.fixture(scope="module")
def split(shop2):
    return leave_category_out_split(shop2, SplitSettings(level=2, categories=NEW, min_history=3))


def test_per_item_rate_is_the_known_rate_x_size_baseline(split, embeddings) -> None:
    adoption = fit_category_adoption(split.train, SETTINGS, embeddings)
    want = baseline_forecasts(adoption, list(NEW))["known-rate-x-size"]
    got = per_item_rate(split.train, 2, 3) * category_sizes(split.train, 2, NEW)
    np.testing.assert_allclose(got, want)


def test_equal_sized_categories_choose_the_per_item_baseline(split, embeddings) -> None:
    """Every department category has 3 items and 22-23 adopters: adopters per item × 3 is nearly exact."""
    chosen, val = choose_forecast(split.train, NEW, embeddings, SETTINGS)
    assert val.method == PER_ITEM and val.errors[PER_ITEM] < val.errors[CALIBRATED]
    assert val.n_categories >= 3 and not set(val.categories) & set(NEW)
    for c in chosen:
        assert c.method == PER_ITEM and c.adopters == c.by_method[PER_ITEM]
        assert c.low <= c.adopters <= c.high
        assert abs(c.adopters - 23) <= 3  # 22 or 23 real adopters of each
    again, val_again = choose_forecast(split.train, NEW, embeddings, SETTINGS)
    assert again == chosen and val_again == val


def test_uneven_sizes_choose_the_calibrated_probabilities(uneven_shop, embeddings) -> None:
    """Unsold items inflate some categories' sizes ×28: the per-item baseline is far off there, the users'
    histories are not."""
    train = without_categories(uneven_shop, 2, NEW)
    chosen, val = choose_forecast(train, NEW, embeddings, SETTINGS)
    assert val.method == CALIBRATED and val.errors[CALIBRATED] < 0.5 * val.errors[PER_ITEM]
    for c in chosen:
        assert c.method == CALIBRATED and c.adopters == c.by_method[CALIBRATED]
        assert c.low < c.adopters < c.high
    assert choose_forecast(train, NEW, embeddings, SETTINGS) == (chosen, val)


def test_a_different_seed_draws_other_validation_categories(split, embeddings) -> None:
    _, val0 = choose_forecast(split.train, NEW, embeddings, SETTINGS)
    _, val1 = choose_forecast(split.train, NEW, embeddings, AdoptionSettings(level=2, validation_folds=3, seed=5))
    assert val0.categories != val1.categories


def test_chosen_forecast_line_reads_like_the_demo() -> None:
    val = _validation([100, 200, 300], [100.0, 200.0, 300.0], [50.0, 50.0, 50.0])
    got = chosen_forecast(val, "Grocery > Cat Food", {PER_ITEM: 1234.4, CALIBRATED: 10.0})
    assert chosen_forecast_line(got, 267) == (
        "Cat Food: forecast 1,234 adopters (80% interval 1,234–1,234, method: per-item baseline, "
        "chosen on 3 validation categories); real: 267"
    )
    assert chosen_forecast_line(got).endswith("validation categories)")


def test_without_categories_hides_only_their_interactions(shop2) -> None:
    known = without_categories(shop2, 2, ["Outdoor > Lanterns"])
    cats = known.category_at(2)[known.interactions["item"].to_numpy()]
    assert "Outdoor > Lanterns" not in set(cats)
    assert len(known.interactions) == len(shop2.interactions) - int(
        (shop2.category_at(2)[shop2.interactions["item"].to_numpy()] == "Outdoor > Lanterns").sum()
    )
