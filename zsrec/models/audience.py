"""Audience scoring: how strongly each user's history points at an ad (a text, some items, a category).

A user's score is a *soft count* of their history items close to the ad: τ·log Σ_{i∈H_u} exp((cos(e_i, ad) − 1) / τ).
With a small temperature τ only items very like the ad count, and each one counts, so a household that buys
yoghurt every week outranks one that bought it once, and both outrank one that never did; nothing is learned
from responses. This is the method measured on the coupon campaigns (docs/benchmarks.md). `profile` (cosine to
the user's mean history vector) is kept for comparison: it ignores how much a user buys, which is why it loses
to the plain activity count there.

Both `zsrec audience` (zsrec.scenarios.audience) and the service's `/audience` score with these functions, so
their users come in the same order and on the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.errors import ConfigError, check_at_least, check_choice, check_positive

SCORINGS = ("soft-count", "profile")


@dataclass(frozen=True)
class AudienceSettings:
    """How users are scored for an ad."""

    scoring: str = "soft-count"  # "soft-count" (history items near the ad) or "profile" (mean-vector cosine)
    temperature: float = 0.05  # soft-count: smaller counts only closer items
    min_history: int = 3  # users with fewer distinct history items are not ranked

    def __post_init__(self) -> None:
        check_choice(self, "scoring", SCORINGS)
        check_positive(self, "temperature")
        check_at_least(self, min_history=1)


def audience_scores(
    item_vectors: np.ndarray, histories: list[np.ndarray], ads: np.ndarray, settings: AudienceSettings
) -> np.ndarray:
    """(len(histories), n_ads) scores; an empty history scores -inf.

    Args:
        item_vectors: (n_items, d) L2-normalised item text embeddings.
        histories: per user, item indexes (repeats count, in soft-count).
        ads: (n_ads, d) L2-normalised ad vectors.
    """
    ads = np.atleast_2d(np.asarray(ads, dtype=np.float32))
    out = np.full((len(histories), len(ads)), -np.inf, dtype=np.float64)
    filled = [r for r, h in enumerate(histories) if len(h)]
    if not filled:
        return out
    if settings.scoring == "profile":
        means = np.stack([item_vectors[histories[r]].mean(axis=0) for r in filled])
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        out[filled] = means @ ads.T
        return out
    sims, starts = history_similarities(item_vectors, [histories[r] for r in filled], ads)
    out[filled] = soft_count(sims, starts, settings.temperature)
    return out


def history_similarities(
    item_vectors: np.ndarray, histories: list[np.ndarray], ads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of every history event to every ad, (n_events, n_ads), and where each (non-empty) history starts.

    Computed once, it serves every temperature (see `soft_count`).
    """
    flat = np.concatenate(histories).astype(np.int64)
    starts = np.cumsum([0] + [len(h) for h in histories[:-1]])
    # once per distinct item, not per event (and never over a catalog far larger than the histories)
    distinct, position = np.unique(flat, return_inverse=True)
    per_item = (item_vectors[distinct] @ np.atleast_2d(ads).T).astype(np.float64)  # (n_distinct, n_ads)
    return per_item[position], starts


def soft_count(sims: np.ndarray, starts: np.ndarray, temperature: float) -> np.ndarray:
    """τ·log Σ_events exp((cos − 1)/τ) per history: (n_histories, n_ads)."""
    weights = np.exp((sims - 1.0) / temperature)  # ≤ 1
    return temperature * np.log(np.add.reduceat(weights, starts, axis=0) + 1e-300)


def eligible(histories: list[np.ndarray], min_history: int) -> np.ndarray:
    """Indexes of the histories with at least `min_history` distinct items (the users an audience ranks)."""
    return np.asarray([u for u, h in enumerate(histories) if len(np.unique(h)) >= min_history], dtype=np.int64)


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of some item vectors: one vector for a group of items or a category."""
    if len(vectors) == 0:
        raise ConfigError("no item to build the ad from")
    v = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-12)
