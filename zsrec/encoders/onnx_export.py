"""Transformer model folders exported to ONNX (fp32) and quantized to int8, once, into zsrec's model cache.

Each exported file `<name>.onnx` has a record `<name>.onnx.json` beside it with its SHA-256 and how it was
made. A file is used only when its bytes hash to the recorded value; a missing, damaged or outdated file is
exported again. Both are written to a temporary name in the same folder and `os.replace`d into place, the
record after the model, so a crash leaves either nothing or a file whose record does not match (and is
therefore rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from zsrec.encoders.split_archive import default_models_dir
from zsrec.errors import ConfigError

# Bumped whenever the export or quantization recipe changes, so old files are rebuilt and the encoder id
# (which includes it) changes too: cached vectors of another recipe are never reused.
RECIPE = "v1"
OPSET = 17
_CHUNK = 1 << 22


def onnx_dir(source_id: str, *, models_dir: str | Path | None = None) -> Path:
    """The folder holding the ONNX files of the model whose stable id is `source_id`."""
    root = Path(models_dir).expanduser() if models_dir is not None else default_models_dir()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id)
    return root / "onnx" / f"{safe}-{RECIPE}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_verified(path: Path) -> bool:
    """Whether `path` exists and hashes to the SHA-256 in its record (`path` + ".json")."""
    try:
        record = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
        return path.stat().st_size == record["size"] and file_sha256(path) == record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_onnx(folder: Path, source_id: str, precision: str, *, models_dir: str | Path | None = None) -> Path:
    """The verified ONNX file of model `folder` at `precision` ("fp32" or "int8"), exported now if needed.

    int8 is made from the (verified) fp32 file, which is therefore kept too.
    """
    target_dir = onnx_dir(source_id, models_dir=models_dir)
    fp32 = target_dir / "model-fp32.onnx"
    if not is_verified(fp32):
        _build(fp32, lambda out: export_fp32(folder, out), {"source": source_id, "opset": OPSET})
    if precision == "fp32":
        return fp32
    if precision != "int8":
        raise ConfigError(f"precision must be 'fp32' or 'int8', got {precision!r}")
    int8 = target_dir / "model-int8.onnx"
    if not is_verified(int8):
        _build(int8, lambda out: quantize_int8(fp32, out), {"source": source_id, "from": "model-fp32.onnx"})
    return int8


def _build(path: Path, make: Callable[[Path], None], about: dict[str, object]) -> None:
    """Run `make(tmp)` and move the result onto `path`, then write its record; nothing partial is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.stem}-", dir=path.parent))
    try:
        tmp = work / path.name
        make(tmp)
        record = {"sha256": file_sha256(tmp), "size": tmp.stat().st_size, "recipe": RECIPE, **about}
        tmp_record = work / (path.name + ".json")
        tmp_record.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
        os.replace(tmp_record, path.with_name(path.name + ".json"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_fp32(folder: Path, out: Path) -> None:
    """Export the transformer in `folder` (its last hidden state) to ONNX at `out`.

    Eager attention and the TorchScript exporter: the default (SDPA, dynamo) export gave wrong vectors for
    padded batches. The dummy batch is padded so that the attention-mask path is the one traced.
    """
    import torch
    import transformers.utils.logging as hf_logging
    from tokenizers import Tokenizer
    from transformers import AutoModel

    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(
            str(folder), attn_implementation="eager", use_safetensors=True, local_files_only=True
        ).eval()
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot export {folder} to ONNX: {err}") from err
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    first, second = tokenizer.encode_batch(["a short title", "a longer text, with a few more words in it"])
    n = len(second.ids)
    ids = torch.tensor([first.ids + [0] * (n - len(first.ids)), second.ids])
    mask = torch.tensor([[1] * len(first.ids) + [0] * (n - len(first.ids)), [1] * n])

    class _LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    axes = {0: "batch", 1: "tokens"}
    # The tracer warns about every shape-dependent branch and index it sees; the exported graph is checked
    # against torch by the tests, so the warnings only alarm a user watching a first use.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _LastHidden(),
            (ids, mask),
            str(out),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
        )


def quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights, one scale per output channel.

    The default settings (every op, one scale per tensor) moved MiniLM's vectors too far from fp32; keeping
    to MatMul with per-channel scales keeps them close while the MatMuls, most of the work, run in int8.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about static quantization on the root logger
    try:
        quantize_dynamic(
            str(fp32), str(out), per_channel=True, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8
        )
    finally:
        root.setLevel(level)
