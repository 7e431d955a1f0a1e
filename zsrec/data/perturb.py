"""Seeded text perturbations that mimic what sellers do to titles: typos, keyword stuffing, noise, no brand.

Every function is pure: it takes a string (and a `numpy.random.Generator` where it is random) and returns a
new string; the same generator state gives the same output. They serve both the robustness evaluation
(`zsrec.robustness.evaluate`, which perturbs held-out items only) and data augmentation during training
(which must never see test items: that is the caller's job).

>>> import numpy as np
>>> stuff_keywords("Cast iron skillet", ["tent", "camping", "skillet"])
'Cast iron skillet tent camping'
>>> remove_brand("Stanley TRA708T Staples", "Stanley")
'TRA708T Staples'
>>> typos("abc", 0.0, np.random.default_rng(0))
'abc'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from zsrec.errors import ConfigError

#: words (lower case) a keyword counter never counts: English stop words plus catalog filler
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | {"pack", "count", "inch", "pcs", "piece", "pieces", "set", "size"}
#: punctuation marks `punctuation_noise` inserts
NOISE_PUNCTUATION = ("!", "!!", ",", ".", "-", "*", "~", "|", "/", "+")

_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)  # a word starts with a letter (skips part numbers)
_TOKEN = re.compile(r"\S+")
_PUNCT = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1], got {rate}")


def typos(text: str, rate: float, rng: np.random.Generator) -> str:
    """Misspell: each letter, with probability `rate`, is dropped or swapped with the next character.

    Only letters are hit (digits in part numbers and spaces stay), so a rate of 0.1 misspells most words
    of a title while keeping it readable, like a hasty seller or an evasive one ("sleping bga").
    """
    _check_rate("rate", rate)
    chars = list(text)
    hits = rng.random(len(chars)) < rate
    kinds = rng.random(len(chars)) < 0.5  # True: drop, False: swap with the next character
    out: list[str] = []
    i = 0
    while i < len(chars):
        c = chars[i]
        if hits[i] and c.isalpha():
            if kinds[i]:
                i += 1
                continue
            if i + 1 < len(chars) and not chars[i + 1].isspace():
                out += [chars[i + 1], c]
                i += 2
                continue
        out.append(c)
        i += 1
    result = "".join(out)
    return result if result.strip() else text  # a title never becomes empty


def casing_noise(text: str, rng: np.random.Generator, rate: float = 0.5) -> str:
    """Re-case words: each word, with probability `rate`, becomes UPPER, lower, Title or aLtErNaTiNg case."""
    _check_rate("rate", rate)

    def recase(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() >= rate:
            return word
        style = int(rng.integers(4))
        if style == 0:
            return word.upper()
        if style == 1:
            return word.lower()
        if style == 2:
            return word.capitalize()
        return "".join(ch.upper() if j % 2 else ch.lower() for j, ch in enumerate(word))

    return _TOKEN.sub(recase, text)


def punctuation_noise(text: str, rng: np.random.Generator, rate: float = 0.3) -> str:
    """Mangle punctuation: existing marks are dropped, and after each word (probability `rate`) marks appear.

    E.g. "Nitrile gloves, large" -> "Nitrile!! gloves large ~". Word characters are never changed.
    """
    _check_rate("rate", rate)
    words = _PUNCT.sub(" ", text).split()
    if not words:
        return text
    out = []
    for word in words:
        out.append(word)
        if rng.random() < rate:
            out.append(NOISE_PUNCTUATION[int(rng.integers(len(NOISE_PUNCTUATION)))])
    return " ".join(out)


def stuff_keywords(text: str, keywords: Iterable[str]) -> str:
    """Append `keywords` to `text`, skipping any already present as a word (case-insensitive), in order."""
    present = {w.lower() for w in _WORD.findall(text)}
    added = []
    for kw in keywords:
        key = kw.strip()
        if key and key.lower() not in present:
            present.add(key.lower())
            added.append(key)
    return " ".join([text.rstrip(), *added]) if added else text


def remove_brand(text: str, brand: str) -> str:
    """Delete every whole-word, case-insensitive mention of `brand` from `text` (tidying spaces).

    A text that would become empty is returned unchanged (a title is never empty); an empty brand is a no-op.
    """
    brand = brand.strip() if isinstance(brand, str) else ""
    if not brand or not isinstance(text, str):
        return text
    pattern = re.compile(r"(?<!\w)" + re.escape(brand) + r"(?!\w)", re.IGNORECASE)
    result = _SPACES.sub(" ", pattern.sub(" ", text)).strip()
    result = re.sub(r"\s+([,.;:!?])", r"\1", result).lstrip(",.;:-– ").strip()
    return result if result else text


def title_words(text: str) -> list[str]:
    """Distinct lower-case words of `text` that a keyword count considers (no stop words, ≥ 3 letters)."""
    seen = dict.fromkeys(w.lower().strip("'-") for w in _WORD.findall(text if isinstance(text, str) else ""))
    return [w for w in seen if len(w) >= 3 and w not in STOP_WORDS]


def frequent_words(texts_by_category: Mapping[str, Sequence[str]], n: int) -> dict[str, list[tuple[str, int]]]:
    """The `n` most frequent title words per category: `{category: [(word, titles containing it), ...]}`.

    Counts are document frequencies (a word counts once per title), ties broken alphabetically, so the
    result is deterministic. These are the words a keyword-stuffing seller copies from other categories.

    >>> frequent_words({"Tents": ["Trail tent", "Dome tent for camping"]}, 2)
    {'Tents': [('tent', 2), ('camping', 1)]}
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    out = {}
    for category, texts in texts_by_category.items():
        counts = Counter(w for t in texts for w in title_words(t))
        out[category] = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[:n]
    return out


def stuffing_keywords(frequent: Mapping[str, Sequence[tuple[str, int]]], own_category: str, n: int) -> list[str]:
    """The `n` words a seller in `own_category` would stuff: the most frequent words of all *other* categories.

    Counts from `frequent_words` are summed over the other categories, so words popular across the rest of
    the catalog come first; words that are frequent in the item's own category are left out (they are not
    foreign, and appending them is no attack). Ties are broken alphabetically.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    own = {w for w, _ in frequent.get(own_category, ())}
    totals: Counter[str] = Counter()
    for category, words in frequent.items():
        if category != own_category:
            for word, count in words:
                if word not in own:
                    totals[word] += count
    return [w for w, _ in sorted(totals.items(), key=lambda wc: (-wc[1], wc[0]))[:n]]


def item_rng(seed: int, item: int) -> np.random.Generator:
    """The generator for one item's perturbation: depends on (seed, item) only, not on processing order."""
    return np.random.default_rng([int(seed), int(item)])
