"""Choosing among settings on validation categories, and checking the choice out of fold.

A choice made on some validation users looks better on those users than it is (it won there). The models that
tune on validation folds (`zero-shot`, `ensemble`) therefore re-run their choice once per validation *part*
without that part's users, score it on them, and keep a departure from their plain default only if that
out-of-fold gain has a paired bootstrap CI above 0 (`paired_gate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zsrec.evaluation.metrics import bootstrap_ci


def n_parts(n_folds: int) -> int:
    """How many validation parts `held_out_masks` makes: one per fold, or two halves of a single fold."""
    return max(n_folds, 2)


def held_out_masks(sizes: list[int], part: int, seed: int) -> list[np.ndarray]:
    """Per validation fold (of `sizes[f]` users), which of its users belong to validation part `part`.

    With two or more folds the parts are the folds (each holds out other categories, as the test split does);
    with one fold they are two seeded halves of its users. A choice checked out of fold is made on the other
    users (`~mask`) and scored on these.

    >>> [m.tolist() for m in held_out_masks([2, 1], 1, seed=0)]
    [[False, False], [True]]
    """
    if not 0 <= part < n_parts(len(sizes)):
        raise ValueError(f"part must be in [0, {n_parts(len(sizes))}), got {part}")
    if len(sizes) >= 2:
        return [np.full(n, i == part) for i, n in enumerate(sizes)]
    half = np.random.default_rng(seed).permutation(sizes[0]) % 2 == 1
    return [~half if part == 0 else half]


def paired_gate(diff: np.ndarray, confidence: float | None, seed: int) -> dict[str, Any]:
    """Whether per-user gains `diff` (candidate minus default, out of fold) are above 0 beyond noise.

    Kept when the percentile bootstrap CI of the mean gain at `confidence` lies above 0; `confidence=None`
    keeps whatever the gain. All-zero gains (the candidate is the default everywhere) are not kept.

    >>> paired_gate(np.array([0.1, 0.2, 0.3]), 0.95, seed=0)["kept"]
    True
    >>> paired_gate(np.zeros(3), 0.95, seed=0)["kept"]
    False
    """
    gain = float(diff.mean()) if len(diff) else 0.0
    if confidence is None:
        return {"kept": True, "gain": gain, "ci": None, "confidence": None}
    if not np.any(diff):
        return {"kept": False, "gain": 0.0, "ci": [0.0, 0.0], "confidence": confidence}
    lo, hi = bootstrap_ci(diff, confidence=confidence, seed=seed)
    return {"kept": bool(lo > 0), "gain": gain, "ci": [lo, hi], "confidence": confidence}


def gate_trained_epoch(
    best_epoch: int,
    best_users: np.ndarray | None,
    untrained_users: np.ndarray | None,
    confidence: float | None,
    seed: int,
) -> dict[str, Any] | None:
    """The trainers' gate: whether a trained best epoch (> 0) beats the untrained start (epoch 0) beyond noise.

    `paired_gate` of the per-user validation gains `best_users - untrained_users`, with `"epoch"` added;
    None where there is nothing to gate (epoch 0 won, no per-user values, or `confidence=None`): the best
    epoch stands.
    """
    if best_epoch == 0 or confidence is None or best_users is None or untrained_users is None:
        return None
    return paired_gate(best_users - untrained_users, confidence, seed) | {"epoch": best_epoch}
