"""Out-of-fold checks shared by the tuned models: validation parts, the paired gate, and the tuner's use of it."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from zsrec.models import selection
from zsrec.models.selection import gate_trained_epoch, held_out_masks, n_parts, paired_gate
from zsrec.models.tuned import TunedZeroShot, TuningSettings


def test_doctests_of_the_selection_helpers() -> None:
    result = doctest.testmod(selection)
    assert result.attempted >= 3 and result.failed == 0


def test_parts_cover_every_validation_user_exactly_once() -> None:
    for sizes in ([5, 3, 4], [7]):
        counts = [np.zeros(n, dtype=int) for n in sizes]
        for part in range(n_parts(len(sizes))):
            for c, m in zip(counts, held_out_masks(sizes, part, seed=3), strict=True):
                c += m
        assert all((c == 1).all() for c in counts)
    halves = [held_out_masks([7], p, seed=3)[0].sum() for p in (0, 1)]
    assert sorted(halves) == [3, 4]  # one fold: two seeded halves
    with pytest.raises(ValueError, match="part"):
        held_out_masks([5, 3], 2, seed=0)


def test_the_gate_keeps_only_a_gain_whose_interval_clears_zero() -> None:
    rng = np.random.default_rng(0)
    clear = paired_gate(0.05 + rng.normal(0, 0.1, 2000), 0.95, seed=0)
    noise = paired_gate(rng.normal(0, 0.1, 2000), 0.95, seed=0)
    assert clear["kept"] and clear["ci"][0] > 0
    assert not noise["kept"] and noise["ci"][0] <= 0 <= noise["ci"][1]
    assert paired_gate(rng.normal(0, 0.1, 50), None, seed=0)["kept"]


def test_the_trainers_gate_judges_only_a_trained_best_epoch_with_per_user_values() -> None:
    start = np.full(500, 0.2)
    better = start + 0.05 + np.random.default_rng(1).normal(0, 0.1, 500)
    gate = gate_trained_epoch(3, better, start, 0.95, seed=0)
    assert gate["kept"] and gate["epoch"] == 3 and gate["gain"] == pytest.approx(float(np.mean(better - start)))
    assert not gate_trained_epoch(3, start + np.random.default_rng(2).normal(0, 0.1, 500), start, 0.95, 0)["kept"]
    assert gate_trained_epoch(0, None, start, 0.95, seed=0) is None  # the untrained start won
    assert gate_trained_epoch(3, None, None, 0.95, seed=0) is None  # one number per epoch: nothing to pair
    assert gate_trained_epoch(3, better, start, None, seed=0) is None  # gate off


def _per_user(gains_by_fold: list[np.ndarray], n_users: int = 400) -> list[np.ndarray]:
    """Two grid points per fold: 0 = a core point scoring 0.1 for everyone, 1 = a departure, 0.1 + gain."""
    return [np.stack([np.full(n_users, 0.1), 0.1 + g]) for g in gains_by_fold]


def test_the_tuner_gate_rejects_a_departure_that_wins_on_one_fold_only() -> None:
    tuner = TunedZeroShot(TuningSettings(n_folds=3))
    core = np.array([True, False])
    rng = np.random.default_rng(1)
    # a large win on fold 0, small losses elsewhere: best on the mean, yet no out-of-fold gain
    lucky = _per_user([gain + rng.normal(0, 0.05, 400) for gain in (0.2, -0.02, -0.02)])
    gate = tuner._gate(lucky, core)
    assert not gate["kept"], gate
    # the part chosen without fold 0 never sees its win
    assert gate["out_of_fold"][0] == {"best": 0, "core_best": 0}
    steady = _per_user([0.03 + rng.normal(0, 0.05, 400) for _ in range(3)])
    gate = tuner._gate(steady, core)
    assert gate["kept"] and gate["ci"][0] > 0 and gate["out_of_fold"][1] == {"best": 1, "core_best": 0}
