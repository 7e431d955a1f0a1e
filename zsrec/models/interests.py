"""Embedding geometry used by the zero-shot models: post-processing and a user's interest clusters."""

from __future__ import annotations

import numpy as np

from zsrec.errors import ConfigError
from zsrec.vectors import centre_catalog, l2_normalize


def postprocess_embeddings(vectors: np.ndarray, mode: str, *, whiten_dims: int = 128) -> np.ndarray:
    """Re-shape an embedding space so that cosine separates items better; rows come back L2-normalised.

    - "none": as encoded.
    - "center": subtract the catalog mean (pretrained sentence embeddings share a large common direction,
      which makes every cosine high; UniSRec and BERT-whitening both remove it).
    - "whiten": center, rotate to principal axes, keep `whiten_dims` of them, scale each to unit variance
      (Su et al. 2021, "Whitening sentence representations").
    """
    x = np.asarray(vectors, dtype=np.float32)
    if mode == "none":
        out = x
    elif mode == "center":
        out = centre_catalog(x)
    elif mode == "whiten":
        mu = x.mean(axis=0, keepdims=True)
        cov = np.cov((x - mu).T)
        u, s, _ = np.linalg.svd(cov)
        k = min(whiten_dims, x.shape[1])
        out = (x - mu) @ (u[:, :k] / np.sqrt(s[:k] + 1e-6))
    else:
        raise ConfigError(f"postprocess must be 'none', 'center' or 'whiten', got {mode!r}")
    return l2_normalize(out)


def interest_clusters(vectors: np.ndarray, k: int, *, iterations: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means on one user's history vectors: up to `k` interest centroids and their shares.

    Deterministic (farthest-point initialisation from the most recent item). A user with a lab-glassware
    history and a safety-glove history gets two centroids, not their average.

    Returns:
        centroids: (m, d) L2-normalised, m = min(k, number of distinct vectors).
        weights: (m,) share of the history in each cluster, summing to 1.
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    if n == 0:
        raise ValueError("interest_clusters needs at least one vector")
    k = min(k, n)
    if k == 1:
        c = x.mean(axis=0, keepdims=True)
        return c / max(float(np.linalg.norm(c)), 1e-12), np.ones(1, dtype=np.float32)
    centers = [n - 1]  # farthest-point seeding from the latest item
    best = x @ x[n - 1]
    for _ in range(1, k):
        nxt = int(np.argmin(best))
        if best[nxt] >= 1.0 - 1e-6:  # every remaining vector equals a centre already
            break
        centers.append(nxt)
        best = np.maximum(best, x @ x[nxt])
    c = x[centers]
    for _ in range(iterations):
        assign = np.argmax(x @ c.T, axis=1)
        new = np.zeros_like(c)
        np.add.at(new, assign, x)
        empty = ~np.bincount(assign, minlength=len(c)).astype(bool)
        new[empty] = c[empty]
        new /= np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
        if np.allclose(new, c):
            break
        c = new
    assign = np.argmax(x @ c.T, axis=1)
    counts = np.bincount(assign, minlength=len(c)).astype(np.float32)
    keep = counts > 0
    return c[keep], counts[keep] / counts.sum()
