"""The four attacks on item text, applied to chosen rows of a catalog (a `Dataset.items` frame).

- `typos`: letters dropped or swapped at `typo_rate` in the title and description;
- `stuffing`: a few items get the most frequent title words of *other* categories appended to their title
  (the seller of an irrelevant item fishing for every shopper);
- `noise`: casing and punctuation noise in the title and description;
- `no-brand`: the brand field emptied and its mentions deleted from the title and description.

Each perturbation is seeded per (seed, item index), so an item's perturbed text does not depend on which
other rows are perturbed with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from zsrec.data.perturb import (
    casing_noise,
    frequent_words,
    item_rng,
    punctuation_noise,
    remove_brand,
    stuff_keywords,
    stuffing_keywords,
    typos,
)
from zsrec.errors import ConfigError, split_list

TYPOS, STUFFING, NOISE, NO_BRAND = "typos", "stuffing", "noise", "no-brand"
ATTACKS = (TYPOS, STUFFING, NOISE, NO_BRAND)


@dataclass(frozen=True)
class AttackSettings:
    """How strong each attack is."""

    typo_rate: float = 0.1  # typos: probability that a letter is dropped or swapped
    casing_rate: float = 0.5  # noise: probability that a word is re-cased
    punctuation_rate: float = 0.3  # noise: probability of stray punctuation after a word
    n_stuffed: int = 20  # stuffing: held-out items whose titles get stuffed (capped at half the pool)
    n_keywords: int = 10  # stuffing: words appended to each stuffed title
    words_per_category: int = 30  # stuffing: frequent words counted per category before merging
    fields: tuple[str, ...] = ("title", "description")  # text columns typos and noise touch (when present)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("typo_rate", "casing_rate", "punctuation_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        for name in ("n_stuffed", "n_keywords", "words_per_category"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if "title" not in self.fields:
            raise ConfigError(f"fields must include 'title', got {self.fields}")


def parse_attacks(text: str) -> tuple[str, ...]:
    """Split "typos,stuffing" into attack names; an unknown name raises ConfigError listing the known ones."""
    names = tuple(dict.fromkeys(split_list(text, "--attacks")))
    unknown = [n for n in names if n not in ATTACKS]
    if unknown or not names:
        raise ConfigError(f"unknown attack {unknown[0]!r}" if unknown else "--attacks is empty")
    return names


def choose_stuffed_items(new_items: np.ndarray, settings: AttackSettings) -> np.ndarray:
    """The held-out items a stuffing seller rewrites: a seeded draw, at most half the pool (sorted)."""
    n = min(settings.n_stuffed, max(1, len(new_items) // 2))
    rng = np.random.default_rng([settings.seed, 7])
    return np.sort(rng.choice(np.asarray(new_items, dtype=np.int64), size=n, replace=False))


def category_keywords(items: pd.DataFrame, categories: np.ndarray, n: int) -> dict[str, list[tuple[str, int]]]:
    """The `n` most frequent title words of each category (`categories`: one label per item row)."""
    titles = items["title"].fillna("").astype(str).to_numpy()
    by_category: dict[str, list[str]] = {}
    for title, cat in zip(titles, categories, strict=True):
        if cat:
            by_category.setdefault(str(cat), []).append(title)
    return frequent_words(by_category, n)


def perturb_items(
    items: pd.DataFrame,
    rows: np.ndarray,
    attack: str,
    settings: AttackSettings,
    *,
    categories: np.ndarray | None = None,
) -> pd.DataFrame:
    """A copy of `items` with the text of `rows` perturbed by `attack` (other rows untouched).

    Args:
        categories: per item row, its category label; `stuffing` takes the appended words from the other
            categories' titles (required for `stuffing`).
    """
    if attack not in ATTACKS:
        raise ConfigError(f"attack must be one of {', '.join(ATTACKS)}, got {attack!r}")
    out = items.copy()
    rows = np.asarray(rows, dtype=np.int64)
    fields = [f for f in settings.fields if f in out.columns]
    if attack == STUFFING:
        if categories is None:
            raise ConfigError("the stuffing attack needs each item's category")
        frequent = category_keywords(items, categories, settings.words_per_category)
        titles = out["title"].tolist()
        for r in rows:
            words = stuffing_keywords(frequent, str(categories[r]), settings.n_keywords)
            titles[r] = stuff_keywords(str(titles[r]), words)
        out["title"] = titles
        return out
    if attack == NO_BRAND:
        if "brand" not in out.columns:
            return out
        brands = out["brand"].fillna("").astype(str).tolist()
        for f in fields:
            values = out[f].tolist()
            for r in rows:
                if isinstance(values[r], str):
                    values[r] = remove_brand(values[r], brands[r])
            out[f] = values
        for r in rows:
            brands[r] = ""
        out["brand"] = brands
        return out
    for f in fields:
        values = out[f].tolist()
        for r in rows:
            text = values[r]
            if not isinstance(text, str) or not text:
                continue
            rng = item_rng(settings.seed, int(r) * 16 + settings.fields.index(f))
            if attack == TYPOS:
                values[r] = typos(text, settings.typo_rate, rng)
            else:
                values[r] = punctuation_noise(
                    casing_noise(text, rng, settings.casing_rate), rng, settings.punctuation_rate
                )
        out[f] = values
    return out
