"""The real all-mpnet-base-v2 (`--encoder mpnet`), where its five optional packages are installed."""

from __future__ import annotations

import numpy as np
import pytest

from zsrec.encoders import SentenceTransformerEncoder, known_identity, load_encoder
from zsrec.encoders.split_archive import MPNET, default_models_dir, is_assembled, pieces_installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (pieces_installed(MPNET) or is_assembled(MPNET, default_models_dir() / MPNET.folder)),
        reason="the all-mpnet-base-v2 packages are not installed (`make mpnet`)",
    ),
]


def test_mpnet_loads_offline_and_ranks_by_meaning() -> None:
    enc = load_encoder("mpnet", batch_size=8, max_length=128)  # assembles into the cache on first use
    assert isinstance(enc, SentenceTransformerEncoder)
    assert is_assembled(MPNET, default_models_dir() / MPNET.folder)
    assert known_identity("mpnet", max_length=128) == (enc.model_id, enc.dim)
    assert enc.dim == 768 and enc.prefixes == {}
    v = enc.encode(
        [
            "Waterproof leather hiking boots for men, non-slip sole",
            "Women's trail running shoes, breathable mesh",
            "Stainless steel saucepan with glass lid, 2 quart",
            "Nonstick frying pan, 10 inch, induction ready",
        ]
    )
    assert v.shape == (4, 768) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    boots, shoes, saucepan, pan = v
    assert boots @ shoes > boots @ saucepan + 0.2
    assert saucepan @ pan > pan @ shoes + 0.2
