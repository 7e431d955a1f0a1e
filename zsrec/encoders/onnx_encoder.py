"""Sentence encoders on ONNX Runtime (fp32 or int8): the packaged models' fast CPU path, no torch at run time.

The model is exported at first use (`zsrec.encoders.onnx_export`); tokenization uses the model folder's fast
tokenizer, and pooling (mean over real tokens) and normalisation follow the sentence-transformers model, so
fp32 vectors match the torch path's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsrec.encoders.base import KINDS, BatchedEncoder, Kind
from zsrec.encoders.onnx_export import RECIPE, ensure_onnx
from zsrec.errors import ConfigError

ONNX_PRECISIONS: tuple[str, ...] = ("fp32", "int8")


def default_threads() -> int:
    """Intra-op threads: at most 2, as more only adds contention on the small CPUs zsrec targets."""
    return max(1, min(2, os.cpu_count() or 1))


class OnnxEncoder(BatchedEncoder):
    """A sentence-transformers model folder (mean pooling) run by ONNX Runtime.

    Args:
        folder: the model folder (config, safetensors weights, tokenizer.json, sentence-transformers pooling).
        source_id: stable id of the folder's weights (e.g. its package and version): names the exported
            files and enters `model_id`.
        name: display name in `model_id`, e.g. "sentence-transformers/all-MiniLM-L6-v2".
        precision: "fp32" or "int8" (MatMul weights, dynamic per-channel quantization).
        batch_size: texts per run; texts are sorted by token count first, so each batch pads little.
        max_length: tokens per text, special tokens included; longer texts are cut.
        num_threads: ONNX Runtime intra-op threads (default min(2, CPU count)); inter-op is always 1.
        prefixes: text put before queries / passages (e5-style models); {} or None for none.
        models_dir: where exported files live; default zsrec's model cache.
    """

    def __init__(
        self,
        folder: Path,
        *,
        source_id: str,
        name: str,
        precision: str = "int8",
        batch_size: int = 64,
        max_length: int = 256,
        num_threads: int | None = None,
        prefixes: Mapping[str, str] | None = None,
        models_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        _check_settings(precision, batch_size, max_length, num_threads, prefixes)
        self.precision = precision
        self.batch_size = batch_size
        self.max_length = max_length
        self.num_threads = num_threads or default_threads()
        self.prefixes = {k: v for k, v in (prefixes or {}).items() if v}
        config = _read_json(folder / "config.json")
        limit = config.get("max_position_embeddings")
        if isinstance(limit, int) and max_length > limit:
            raise ConfigError(f"max_length must be <= {limit} for {name} (its positions), got {max_length}")
        _check_mean_pooling(folder)
        self._tokenizer = _Tokenizer(folder, max_length)
        self.path = ensure_onnx(folder, source_id, precision, models_dir=models_dir)
        self._session = _session(self.path, self.num_threads)
        self.dim = int(config["hidden_size"])
        self.model_id = f"onnx-{precision}-{RECIPE}:{name}@{source_id}|max_length={max_length}"
        if self.prefixes:
            self.model_id += "|prefixes=" + json.dumps(self.prefixes, sort_keys=True, ensure_ascii=False)

    def sort_keys(self, texts: Sequence[str]) -> list[int]:
        """Token counts (after truncation): batches are cut from texts sorted by them."""
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        prefix = self.prefixes.get(kind, "")
        encodings = self._tokenizer.encode_batch([prefix + t for t in texts] if prefix else texts)
        n = max(len(e.ids) for e in encodings)  # padded to this batch's longest text only
        ids = np.zeros((len(texts), n), dtype=np.int64)
        mask = np.zeros((len(texts), n), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        ids[mask == 0] = self._tokenizer.pad_id
        (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        weights = mask[:, :, None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


class _Tokenizer:
    """The folder's fast tokenizer, truncating to `max_length` tokens, never padding (batches pad themselves)."""

    def __init__(self, folder: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        path = folder / "tokenizer.json"
        if not path.is_file():
            raise ConfigError(f"cannot run {folder} on ONNX Runtime: it has no tokenizer.json")
        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)
        special_map = folder / "special_tokens_map.json"
        special = _read_json(special_map) if special_map.is_file() else {}
        pad = special.get("pad_token", "[PAD]")
        pad_token = pad.get("content") if isinstance(pad, dict) else pad
        pad_id = self._tok.token_to_id(str(pad_token))
        self.pad_id = int(pad_id) if pad_id is not None else 0

    def encode_batch(self, texts: list[str]) -> list[Any]:
        return self._tok.encode_batch(texts)


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Waiting threads sleep instead of spinning: on a small machine shared with other work, spinning
    # threads take the cores that the other work (or the next batch) needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _check_settings(
    precision: str, batch_size: int, max_length: int, threads: int | None, prefixes: Mapping[str, str] | None
) -> None:
    if precision not in ONNX_PRECISIONS:
        raise ConfigError(f"precision must be one of {ONNX_PRECISIONS}, got {precision!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if max_length < 2:
        raise ConfigError(f"max_length must be >= 2, got {max_length}")
    if threads is not None and threads < 1:
        raise ConfigError(f"num_threads must be >= 1, got {threads}")
    unknown = sorted(set(prefixes or {}) - set(KINDS))
    if unknown:
        raise ConfigError(f"prefixes keys must be among {KINDS}, got {unknown}")


def _check_mean_pooling(folder: Path) -> None:
    """Refuse a sentence-transformers folder whose pooling is not the mean over tokens (the one implemented)."""
    pooling = folder / "1_Pooling" / "config.json"
    if not pooling.is_file():
        return  # a plain transformers folder: sentence-transformers mean-pools it too
    config = _read_json(pooling)
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
    if modes != ["pooling_mode_mean_tokens"]:
        raise ConfigError(f"cannot run {folder} on ONNX Runtime: its pooling {modes} is not mean pooling")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return value
