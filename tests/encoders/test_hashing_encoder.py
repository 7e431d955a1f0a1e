"""The fake encoder used across the project's unit tests, and the batching contract it shares."""

from __future__ import annotations

import numpy as np
import pytest

from zsrec.encoders import HashingEncoder, TextEncoder
from zsrec.encoders.base import Kind
from zsrec.encoders.hashing import tokenize
from zsrec.errors import ConfigError


def test_tokenize_lowercases_words_and_splits_cjk_characters() -> None:
    assert tokenize("Trail TENT, 2-person") == ["trail", "tent", "2", "person"]
    assert tokenize("Café crème 智能手表") == ["café", "crème", "智", "能", "手", "表"]
    assert tokenize("  ,.- ") == []


def test_rows_are_unit_length_float32_and_deterministic() -> None:
    texts = ["Trail tent for two", "", "!!!", "智能手表 运动", "tent tent tent"]
    a = HashingEncoder(32).encode(texts)
    b = HashingEncoder(32).encode(texts)
    assert a.dtype == np.float32 and a.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a, b)


def test_texts_sharing_words_are_closer_than_unrelated_ones() -> None:
    enc = HashingEncoder()
    tent, tent2, pan = enc.encode(["lightweight trail tent", "trail tent two person", "copper saucepan lid"])
    assert tent @ tent2 > 0.3
    assert tent @ tent2 > tent @ pan + 0.3
    w1, w2, rice = enc.encode(["智能手表", "运动智能手表", "东北大米"])
    assert w1 @ w2 > w1 @ rice + 0.3


def test_model_id_and_protocol() -> None:
    enc = HashingEncoder(64)
    assert enc.model_id == "hashing-64" and enc.dim == 64
    assert isinstance(enc, TextEncoder)
    with pytest.raises(ConfigError, match="dim must be >= 2, got 1"):
        HashingEncoder(1)


def test_batches_sorted_by_length_and_order_restored() -> None:
    class Recording(HashingEncoder):
        batches: list[list[str]] = []

        def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
            self.batches.append(list(texts))
            return super()._encode_batch(texts, kind)

    enc = Recording(batch_size=2)
    texts = ["a", "a much longer text here", "mid text", "bb", "the longest text of them all, by far"]
    together = enc.encode(texts)
    assert [len(b) for b in enc.batches] == [2, 2, 1]
    lengths = [len(t) for b in enc.batches for t in b]
    assert lengths == sorted(lengths, reverse=True)
    one_by_one = np.vstack([HashingEncoder().encode([t]) for t in texts])
    np.testing.assert_array_equal(together, one_by_one)
    assert enc.n_forward_texts == 5


def test_input_checks() -> None:
    enc = HashingEncoder()
    assert enc.encode([]).shape == (0, 64)
    assert enc.n_forward_texts == 0
    with pytest.raises(ConfigError, match="kind must be one of"):
        enc.encode(["x"], kind="document")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single str"):
        enc.encode("tent")
    with pytest.raises(TypeError, match=r"texts\[1\] must be str, got float"):
        enc.encode(["tent", float("nan")])  # type: ignore[list-item]


def test_progress_bar_does_not_change_results(capsys: pytest.CaptureFixture[str]) -> None:
    enc = HashingEncoder(batch_size=3)
    texts = [f"item {i}" for i in range(10)]
    np.testing.assert_array_equal(enc.encode(texts, show_progress=True), enc.encode(texts))
    assert capsys.readouterr().out == ""  # the bar goes to stderr, never into piped results
