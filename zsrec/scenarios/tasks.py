"""One call per scenario, from ids and names as a shop gives them; the CLI and the demo are thin over these."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.data.lookup import find_user
from zsrec.data.splits import resolve_categories
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.scenarios.adoption import (
    AdoptionSettings,
    CategoryScorer,
    adoption_labels,
    eligible_users,
    fit_category_adoption,
)
from zsrec.scenarios.audience import AudienceMember, AudienceSettings, mean_vector, rank_audience
from zsrec.scenarios.forecast import Forecast, forecast_categories, forecast_text
from zsrec.scenarios.profile import InterestTag, interest_tags
from zsrec.scenarios.similar import SimilarItem, similar_items


def item_vectors(data: Dataset, embeddings: EmbeddingSource) -> np.ndarray:
    """The catalog's text embeddings, with the template the zero-shot models use (so the cache is shared)."""
    return embeddings.items(data.items, ItemTextTemplate())


def find_items(data: Dataset, ids: list[str]) -> np.ndarray:
    """Item indexes of external ids; unknown ids raise ConfigError naming them."""
    item_map = data.item_map
    missing = [i for i in ids if i not in item_map]
    if missing:
        examples = ", ".join(data.items["item_id"].head(3).astype(str))
        raise ConfigError(f"unknown item ids {missing[:5]} in {data.name} (ids look like: {examples})")
    return item_map.index(ids)


def find_category(data: Dataset, name: str, level: int) -> str:
    """A level-`level` category path from a full path or a unique last-level name."""
    return resolve_categories(data, level, (name,))[0]


# -- audience ------------------------------------------------------------------------------------------------
def audience(
    data: Dataset,
    embeddings: EmbeddingSource,
    *,
    text: str | None = None,
    items: list[str] | None = None,
    category: str | None = None,
    level: int = 2,
    k: int = 10,
    settings: AudienceSettings | None = None,
) -> tuple[str, list[AudienceMember]]:
    """The users most likely to respond to an ad given as text, as items, or as a category; (ad, users)."""
    given = [x for x in (text, items, category) if x]
    if len(given) != 1:
        raise ConfigError("give exactly one of --text, --items or --category")
    vectors = item_vectors(data, embeddings)
    if text:
        ad, label = embeddings.texts([text])[0], text
    elif items:
        idx = find_items(data, items)
        ad, label = mean_vector(vectors[idx]), "; ".join(data.items["title"].to_numpy()[idx].tolist())
    else:
        assert category is not None
        path = find_category(data, category, level)
        ad, label = mean_vector(vectors[data.category_at(level) == path]), f"category {path}"
    ad = ad / max(float(np.linalg.norm(ad)), 1e-12)
    return label, rank_audience(data, vectors, ad, k=k, settings=settings)


# -- similar -------------------------------------------------------------------------------------------------
def similar(
    data: Dataset,
    embeddings: EmbeddingSource,
    item: str,
    *,
    k: int = 10,
    other_categories: bool = False,
    level: int = 1,
) -> tuple[SimilarItem, list[SimilarItem]]:
    """(the query item, its `k` most similar items), optionally only from other level-`level` categories."""
    index = int(find_items(data, [item])[0])
    row = data.items.iloc[index]
    query = SimilarItem(str(row["item_id"]), str(row["title"]), str(row["category"]), 1.0)
    vectors = item_vectors(data, embeddings)
    return query, similar_items(data, vectors, index, k=k, other_categories=other_categories, level=level)


# -- forecast ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForecastResult:
    forecast: Forecast
    actual: int | None  # for a category of the dataset: how many of the same users really adopted it
    category_items: int  # items the forecast assumed the category has
    calibration: dict[str, object]  # what the probabilities were calibrated on


def forecast(
    data: Dataset,
    embeddings: EmbeddingSource,
    *,
    category: str | None = None,
    text: str | None = None,
    level: int = 2,
    n_items: int | None = None,
    settings: AdoptionSettings | None = None,
    top: int = 5,
) -> ForecastResult:
    """Expected adopters of a category as if it were new (its interactions are hidden), or of a text.

    For a category of the dataset, the real number of adopters among the same users is returned beside the
    forecast, so one command shows how close it came.
    """
    if (category is None) == (text is None):
        raise ConfigError("give exactly one of --category or --text")
    settings = settings or AdoptionSettings(level=level)
    if category is not None:
        path = find_category(data, category, level)
        in_category = data.category_at(level)[data.interactions["item"].to_numpy()] == path
        known = data.with_interactions(data.interactions[~in_category])
        adoption = fit_category_adoption(known, settings, embeddings)
        result = forecast_categories(adoption, [path], top=top)[0]
        users = eligible_users(known, settings.min_history)  # the users the forecast sums over
        actual = int(adoption_labels(data, users, level, [path]).sum())
        return ForecastResult(
            result, actual, int(adoption.scorer.n_items[adoption.scorer.category_rows([path])][0]), adoption.validation
        )
    assert text is not None
    if not text.strip():
        raise ConfigError("--text is empty")
    adoption = fit_category_adoption(data, settings, embeddings)
    sizes = adoption.scorer.n_items[adoption.scorer.real]
    size = int(np.median(sizes)) if n_items is None else n_items
    if size < 1:
        raise ConfigError(f"n_items must be >= 1, got {size}")
    vector = embeddings.texts([text])[0]
    return ForecastResult(forecast_text(adoption, vector, size, top=top), None, size, adoption.validation)


# -- profile -------------------------------------------------------------------------------------------------
def profile(
    data: Dataset,
    embeddings: EmbeddingSource,
    user: str,
    *,
    level: int = 2,
    k: int = 5,
    new_only: bool = False,
) -> list[InterestTag]:
    """The user's top `k` interest tags at `level`, each with the history items behind it."""
    index = find_user(data, user)
    if data.category_depth() < level:
        raise ConfigError(f"the catalog has no categories at level {level} (deepest level: {data.category_depth()})")
    scorer = CategoryScorer(data, level, embeddings)
    if len(scorer.model.histories_[index]) == 0:
        raise ConfigError(f"user {user!r} has no history in {data.name}: nothing to profile")
    return interest_tags(scorer, index, k=k, new_only=new_only)
