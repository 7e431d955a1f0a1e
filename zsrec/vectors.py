"""Vector maths shared by the models, their trainers and the service: normalising, z-scoring, recency
weights, catalog centring. Core layer: numpy only, so every layer above may use it."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def standardise(scores: np.ndarray) -> np.ndarray:
    """Z-score each row over its finite entries (a constant row becomes all zeros)."""
    x = np.asarray(scores, dtype=np.float32)
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    std[std == 0] = 1.0
    return (x - mean) / std


def history_weights(n: int, aggregation: str, half_life: float) -> np.ndarray:
    """Weights of a user's `n` history events, oldest first, summing to 1 (float32).

    `aggregation="recency"` halves an event's weight every `half_life` later events; anything else weighs
    them equally.
    """
    if aggregation == "recency":
        age = np.arange(n - 1, -1, -1, dtype=np.float32)  # 0 for the latest event
        w = np.power(np.float32(0.5), age / np.float32(half_life))
    else:
        w = np.ones(n, dtype=np.float32)
    return w / w.sum()


def catalog_mean(vectors: np.ndarray) -> np.ndarray:
    """The mean item vector of a catalog: the common direction that pretrained sentence embeddings share."""
    return np.asarray(vectors).mean(axis=0)


def centre_catalog(vectors: np.ndarray) -> np.ndarray:
    """Item vectors minus their catalog's mean (not re-normalised)."""
    return vectors - catalog_mean(vectors)


def recentre(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """`vectors` minus a stored catalog `mean`, re-normalised; unchanged where the mean is zero (no centring)."""
    if not mean.any():
        return vectors
    return l2_normalize(vectors - mean)
