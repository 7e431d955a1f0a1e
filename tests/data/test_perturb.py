"""The text perturbations: seeded, pure, and doing what their names say."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zsrec.data import perturb
from zsrec.data.perturb import (
    casing_noise,
    frequent_words,
    item_rng,
    punctuation_noise,
    remove_brand,
    stuff_keywords,
    stuffing_keywords,
    title_words,
    typos,
)
from zsrec.errors import ConfigError

TITLE = "Nitrile Exam Gloves, Powder-Free, Large (100 Count)"


def test_doctests_pass() -> None:
    result = doctest.testmod(perturb)
    assert result.attempted >= 4 and result.failed == 0


def test_typos_same_seed_same_text_and_rate_zero_is_identity() -> None:
    a = typos(TITLE, 0.2, np.random.default_rng(1))
    b = typos(TITLE, 0.2, np.random.default_rng(1))
    assert a == b
    assert a != TITLE
    assert typos(TITLE, 0.0, np.random.default_rng(1)) == TITLE


def test_typos_keep_digits_and_change_more_at_higher_rates() -> None:
    text = "sleeping bag 2000 down camping mummy bag 1200"
    low = typos(text, 0.05, np.random.default_rng(3))
    high = typos(text, 0.5, np.random.default_rng(3))
    assert "2000" in high and "1200" in high
    changed = lambda t: sum(a != b for a, b in zip(t, text, strict=False)) + abs(len(t) - len(text))  # noqa: E731
    assert changed(high) > changed(low)


def test_typos_at_rate_one_only_drop_or_swap_letters() -> None:
    out = typos("abcd", 1.0, np.random.default_rng(0))
    assert out  # never empty
    assert set(out) <= set("abcd")
    assert len(out) < 4 or out != "abcd"  # every letter was hit: dropped or swapped


@given(st.text(min_size=1, max_size=60), st.floats(0, 1), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_typos_only_remove_or_reorder_characters(text: str, rate: float, seed: int) -> None:
    out = typos(text, rate, np.random.default_rng(seed))
    from collections import Counter

    assert not Counter(out) - Counter(text)  # no character invented
    if text.strip():
        assert out.strip()


def test_casing_noise_changes_only_case() -> None:
    out = casing_noise(TITLE, np.random.default_rng(0), rate=1.0)
    assert out.lower() == TITLE.lower()
    assert out != TITLE
    assert casing_noise(TITLE, np.random.default_rng(0), rate=0.0) == TITLE


def test_punctuation_noise_keeps_words_and_changes_marks() -> None:
    out = punctuation_noise(TITLE, np.random.default_rng(2), rate=1.0)
    words = lambda t: [w for w in "".join(c if c.isalnum() else " " for c in t).split()]  # noqa: E731
    assert words(out) == words(TITLE)
    assert "," not in out.replace(" , ", "")  # original commas are gone (only inserted ones stand alone)
    assert out != TITLE


def test_stuff_keywords_appends_new_words_once() -> None:
    assert stuff_keywords("Tent", ["Camping", "tent", "camping", " ", "stove"]) == "Tent Camping stove"
    assert stuff_keywords("Tent", []) == "Tent"


def test_remove_brand_whole_words_case_insensitive() -> None:
    assert remove_brand("Stanley TRA708T Staples by STANLEY.", "Stanley") == "TRA708T Staples by."
    assert remove_brand("3M Nexcare tape", "3M") == "Nexcare tape"
    assert remove_brand("Stanleyville clamp", "Stanley") == "Stanleyville clamp"  # not a whole word
    assert remove_brand("Stanley", "Stanley") == "Stanley"  # never empty
    assert remove_brand("Any title", "") == "Any title"


def test_title_words_skip_stop_words_numbers_and_short_words() -> None:
    assert title_words("The 2-Pack of 10mm Gloves for Lab use, gloves") == ["gloves", "lab", "use"]


def test_frequent_words_are_document_frequencies_with_alphabetical_ties() -> None:
    out = frequent_words({"A": ["tent tent camping", "tent dome", "stove camping"], "B": ["knife"]}, 2)
    assert out == {"A": [("camping", 2), ("tent", 2)], "B": [("knife", 1)]}
    with pytest.raises(ConfigError, match="n must be >= 1"):
        frequent_words({}, 0)


def test_stuffing_keywords_come_from_other_categories_only() -> None:
    freq = {
        "Outdoor": [("tent", 9), ("camping", 7), ("steel", 2)],
        "Kitchen": [("steel", 8), ("knife", 5), ("pan", 4)],
        "Garden": [("hose", 6), ("steel", 1)],
    }
    assert stuffing_keywords(freq, "Kitchen", 3) == ["tent", "camping", "hose"]  # steel is Kitchen's own word
    assert stuffing_keywords(freq, "Outdoor", 2) == ["hose", "knife"]
    assert stuffing_keywords(freq, "Unknown", 1) == ["steel"]  # 2 + 8 + 1


def test_item_rng_depends_on_seed_and_item_only() -> None:
    assert item_rng(0, 5).random() == item_rng(0, 5).random()
    assert item_rng(0, 5).random() != item_rng(0, 6).random()
    assert item_rng(1, 5).random() != item_rng(0, 5).random()


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_rates_outside_unit_interval_are_refused(rate: float) -> None:
    with pytest.raises(ConfigError, match="rate must be in"):
        typos("x", rate, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="rate must be in"):
        casing_noise("x", np.random.default_rng(0), rate=rate)
