"""Item and user text embeddings for the models: one encoder, loaded once, behind the on-disk cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zsrec.encoders import EmbeddingCache, TextEncoder, default_cache_dir, load_encoder_lazily
from zsrec.encoders.templates import ItemTextTemplate, UserTextTemplate


class EmbeddingSource:
    """Turns catalog rows and user rows into normalised embeddings, encoding each distinct text once ever.

    The language model loads lazily, on the first text that is not in the cache: a run whose texts are all
    cached never loads it (for the packaged encoders, whose cache ids are known in advance; see
    `zsrec.encoders.lazy`). Several models in one run share one source, so it loads at most once per process.
    """

    def __init__(
        self,
        encoder: str | TextEncoder = "minilm",
        *,
        cache_dir: str | Path | None = None,
        show_progress: bool = False,
    ) -> None:
        self._spec = encoder if isinstance(encoder, str) else None
        self._encoder = None if isinstance(encoder, str) else encoder
        self.cache = EmbeddingCache(cache_dir or default_cache_dir())
        self.show_progress = show_progress

    @property
    def encoder(self) -> TextEncoder:
        """The encoder; for a spec, a `LazyEncoder` that loads the model on the first cache miss."""
        if self._encoder is None:
            assert self._spec is not None  # one of the two is always set by __init__
            self._encoder = load_encoder_lazily(self._spec)
        return self._encoder

    def texts(self, texts: list[str], *, kind: str = "passage", namespace: str = "") -> np.ndarray:
        """Embeddings of `texts`; empty strings get zero vectors (nothing is known, so nothing is claimed)."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        filled = [i for i, t in enumerate(texts) if t.strip()]
        vectors = self.cache.encode(
            self.encoder,
            [texts[i] for i in filled],
            kind=kind,
            namespace=namespace,
            show_progress=self.show_progress,
        )
        out = np.zeros((len(texts), vectors.shape[1] if len(filled) else self.encoder.dim), dtype=np.float32)
        out[filled] = vectors
        return out

    def items(self, items: pd.DataFrame, template: ItemTextTemplate) -> np.ndarray:
        return self.texts(template.render(items), kind="passage", namespace=template.id)

    def users(self, users: pd.DataFrame, template: UserTextTemplate) -> np.ndarray:
        return self.texts(template.render(users), kind="query", namespace=template.id)
