"""The models' embedding source: the whole Scientific catalog encoded twice costs one encoding."""

from __future__ import annotations

import numpy as np
import pytest
from shop_fixtures import require_amazon, tiny_shop

from zsrec.data import load_dataset
from zsrec.encoders import HashingEncoder, ItemTextTemplate, UserTextTemplate
from zsrec.errors import ConfigError
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


class _CountingLoader:
    """Stands in for `load_encoder` inside zsrec.encoders.lazy: counts loads, builds a cheap stand-in."""

    def __init__(self, model_id: str | None = None) -> None:
        self.loads = 0
        self.model_id = model_id

    def __call__(self, spec: str, **_: object) -> HashingEncoder:
        self.loads += 1
        dim = 384 if spec in ("minilm", "e5-multilingual") else int(spec.rsplit("-", 1)[1])
        encoder = HashingEncoder(dim=dim)
        if self.model_id is not None:  # pose as the packaged model whose id the cache is keyed by
            encoder.model_id = self.model_id
        return encoder


def test_the_encoder_loads_only_on_a_cache_miss(tmp_path, monkeypatch) -> None:
    loader = _CountingLoader()
    monkeypatch.setattr("zsrec.encoders.lazy.load_encoder", loader)
    shop = tiny_shop()
    first = EmbeddingSource("hashing-32", cache_dir=tmp_path).items(shop.items, ItemTextTemplate())
    assert loader.loads == 1  # cold cache: the texts had to be encoded
    # a new run over the same cache: items and nothing new -> no load at all
    warm = EmbeddingSource("hashing-32", cache_dir=tmp_path)
    np.testing.assert_array_equal(warm.items(shop.items, ItemTextTemplate()), first)
    assert loader.loads == 1 and warm.encoder.n_forward_texts == 0
    # one unseen text (user profiles were never encoded) -> that source loads, once, for all its calls
    warm.users(shop.users, UserTextTemplate())
    warm.users(shop.users.assign(profile="something new"), UserTextTemplate())
    assert loader.loads == 2


def test_a_warm_cache_of_the_packaged_model_needs_no_model_load(tmp_path, monkeypatch) -> None:
    from zsrec.encoders import known_identity

    model_id, dim = known_identity("minilm")
    assert dim == 384 and model_id.startswith("st:sentence-transformers/all-MiniLM-L6-v2@")
    loader = _CountingLoader(model_id=model_id)
    monkeypatch.setattr("zsrec.encoders.lazy.load_encoder", loader)
    shop = tiny_shop()
    EmbeddingSource("minilm", cache_dir=tmp_path).items(shop.items, ItemTextTemplate())
    assert loader.loads == 1
    EmbeddingSource("minilm", cache_dir=tmp_path).items(shop.items, ItemTextTemplate())
    assert loader.loads == 1


def test_an_encoder_that_loads_under_another_id_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("zsrec.encoders.lazy.load_encoder", _CountingLoader(model_id="something-else"))
    with pytest.raises(RuntimeError, match="announced as"):
        EmbeddingSource("minilm", cache_dir=tmp_path).items(tiny_shop().items, ItemTextTemplate())


def test_specs_whose_id_is_unknown_in_advance_load_at_once(monkeypatch) -> None:
    from zsrec.encoders import LazyEncoder, known_identity, load_encoder_lazily

    assert known_identity("hashing-16") == ("hashing-16", 16)
    assert known_identity("minilm", max_length=512) is None  # only the default-range settings are known
    assert known_identity("/some/model/folder") is None
    assert isinstance(load_encoder_lazily("e5-multilingual"), LazyEncoder)
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):  # bad settings fail now, not later
        load_encoder_lazily("minilm", batch_size=0)
