"""Collaborative baseline: implicit-feedback ALS (Hu, Koren, Volinsky 2008) from the `implicit` library.

Useful only where items have interactions (the leave-one-out protocol); on a new category it has nothing to
go on, which the leave-category-out tables show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from scipy import sparse

from zsrec.data.dataset import Dataset
from zsrec.errors import check_at_least
from zsrec.models.base import RefitsOnInteractions


@dataclass(frozen=True)
class AlsSettings:
    factors: int = 64  # latent dimension
    regularization: float = 0.05  # L2 penalty on the factors
    alpha: float = 2.0  # confidence = 1 + alpha * count
    iterations: int = 15  # ALS sweeps
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, factors=1, iterations=1, regularization=0)


class AlsRecommender(RefitsOnInteractions):
    """Score = user factors · item factors, learned by implicit's ALS on the training interactions.

    `partial_fit(events)` keeps the interactions it was fitted on and refits from scratch (same seed) on them
    plus the events: ALS has no cheap exact update for new items, and one refit is seconds at catalog scale.
    After `load` the fit interactions are read back from the saved histories.
    """

    name = "als"
    _state = ("user_factors_", "item_factors_")

    def __init__(self, settings: AlsSettings | None = None) -> None:
        super().__init__(settings or AlsSettings())

    def fit(self, data: Dataset) -> Self:
        self._remember(data)
        self._fit_interactions(data)
        return self

    def _refit(self) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        s = self.settings
        users, items = self._interaction_pairs()
        user_items = sparse.csr_matrix(
            (np.ones(len(users), dtype=np.float32), (users, items)), shape=(self.n_users_, self.n_items_)
        )
        # implicit runs its own threads; threaded BLAS under it is slower (and it warns when it sees one)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=s.factors,
                regularization=s.regularization,
                alpha=s.alpha,
                iterations=s.iterations,
                random_state=s.seed,
            )
            model.fit(user_items, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_[np.asarray(users)] @ self.item_factors_[np.asarray(items)].T

    @classmethod
    def _settings_from_dict(cls, values: dict[str, Any] | None) -> AlsSettings:
        return AlsSettings(**(values or {}))
