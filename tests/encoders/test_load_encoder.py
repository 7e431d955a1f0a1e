"""load_encoder's aliases and errors that need no real model."""

from __future__ import annotations

import pytest

from zsrec.encoders import HashingEncoder, load_encoder
from zsrec.errors import ConfigError


def test_hashing_alias() -> None:
    enc = load_encoder("hashing-32", batch_size=8)
    assert isinstance(enc, HashingEncoder) and enc.dim == 32 and enc.batch_size == 8
    assert load_encoder("hashing").model_id == "hashing-64"


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec_is_refused(spec: str) -> None:
    message = "encoder spec must be a non-empty string.*known: minilm, e5-multilingual"
    with pytest.raises(ConfigError, match=message):
        load_encoder(spec)


def test_bad_settings_are_refused_before_any_model_loads() -> None:
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        load_encoder("hashing", batch_size=0)
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        load_encoder("minilm", batch_size=0)
