"""The models' embedding source: the whole Scientific catalog encoded twice costs one encoding."""

from __future__ import annotations

import numpy as np
import pytest
from shop_fixtures import require_amazon, tiny_shop

from zsrec.data import load_dataset
from zsrec.encoders import HashingEncoder, ItemTextTemplate, UserTextTemplate
from zsrec.models.embedding_source import EmbeddingSource


@pytest.mark.shared_data
def test_second_encoding_of_the_scientific_catalog_makes_no_forward_pass(tmp_path) -> None:
    data = load_dataset(f"amazon-lcrec:{require_amazon()}")
    encoder = HashingEncoder(dim=64)
    first = EmbeddingSource(encoder, cache_dir=tmp_path).items(data.items, ItemTextTemplate())
    distinct = len(set(ItemTextTemplate().render(data.items)))
    assert encoder.n_forward_texts == distinct
    # a new run: a new source over the same cache folder, as a second `zsrec evaluate` would make
    second = EmbeddingSource(encoder, cache_dir=tmp_path).items(data.items, ItemTextTemplate())
    assert encoder.n_forward_texts == distinct
    np.testing.assert_array_equal(first, second)


def test_users_without_profile_text_get_zero_vectors(tmp_path) -> None:
    users = tiny_shop().users.assign(profile=lambda df: ["" if i % 2 else p for i, p in enumerate(df["profile"])])
    vectors = EmbeddingSource(HashingEncoder(dim=32), cache_dir=tmp_path).users(users, UserTextTemplate())
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms[1::2], 0.0)
    assert np.allclose(norms[0::2], 1.0, atol=1e-5)
