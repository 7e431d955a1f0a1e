"""A fake encoder for fast, deterministic tests: hashed bag of words, no model, no torch."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np

from zsrec.encoders.base import BatchedEncoder, Kind
from zsrec.errors import ConfigError

# Han, kana and hangul carry meaning per character and are written without spaces: one token each.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; every CJK character is a token of its own.

    >>> tokenize("Trail Tent, 2-person 智能手表")
    ['trail', 'tent', '2', 'person', '智', '能', '手', '表']
    """
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=65536)
def _token_hash(token: str) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and vectors must match across runs.
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


class HashingEncoder(BatchedEncoder):
    """Signed feature hashing of word counts into `dim` buckets, L2-normalised.

    Texts sharing words get a positive cosine, texts sharing none get a cosine near 0 (exactly 0 unless two
    words collide in a bucket). A text with no word gets the vector of the empty token, so every row has unit
    length. `kind` is ignored: queries and passages live in the same space.
    """

    def __init__(self, dim: int = 64, *, batch_size: int = 1024) -> None:
        super().__init__()
        if dim < 2:
            raise ConfigError(f"dim must be >= 2, got {dim}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.dim = dim
        self.batch_size = batch_size
        self.model_id = f"hashing-{dim}"

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text) or [""]:
                self._add(out[row], token)
            if not out[row].any():  # words cancelled out in shared buckets: keep the row non-zero
                self._add(out[row], "")
        return out

    def _add(self, row: np.ndarray, token: str) -> None:
        h = _token_hash(token)
        row[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
