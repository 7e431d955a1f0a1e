"""Model folders written by `zsrec train`, and the guard that keeps a model off the categories it learned from.

A model folder holds what the model's own `save` writes (`config.json`, `.npy` arrays, safetensors weights or a
LoRA adapter) plus `training.json`: the package version, the dataset's fingerprint, the split the model was
trained on (protocol, level, held-out test categories), the encoder, hyper-parameters (in config.json), training
time, trainable parameters, peak memory and the per-epoch training log.

`check_evaluable` refuses a model on an evaluation split whose test items it has seen interactions of: every
new item of the evaluation must have been held out when the model was trained, on the same catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from zsrec._version import __version__
from zsrec.data.dataset import Dataset
from zsrec.data.splits import LEAVE_CATEGORY_OUT, LEAVE_ONE_OUT, EvalSplit, SplitSettings
from zsrec.errors import ConfigError, CorruptModelError
from zsrec.io import atomic_write_text
from zsrec.manifest import write_manifest
from zsrec.models.base import Recommender
from zsrec.models.registry import load_model
from zsrec.reporting import json_ready

TRAINING_FILE = "training.json"
#: `protocol` of a model trained on every interaction (nothing held out: for production, not for evaluation)
ALL_DATA = "none"


def dataset_fingerprint(data: Dataset) -> dict[str, Any]:
    """Name, sizes and a hash of the item and user ids in index order: a model's item indexes only mean
    something on the catalog it was trained on."""
    items = "\n".join(map(str, data.item_map.all_ids)).encode()
    users = "\n".join(map(str, data.user_map.all_ids)).encode()
    return {
        "name": data.name,
        "n_items": data.n_items,
        "n_users": data.n_users,
        "items_sha256": hashlib.sha256(items).hexdigest(),
        "users_sha256": hashlib.sha256(users).hexdigest(),
    }


@dataclass(frozen=True)
class TrainingRecord:
    """What `training.json` says about how a model folder came to be."""

    model: str
    dataset: dict[str, Any]  # dataset_fingerprint
    protocol: str  # "leave-category-out", "leave-one-out" or "none" (trained on everything)
    level: int | None = None
    heldout_categories: tuple[str, ...] = ()  # test categories kept out of training (leave-category-out)
    validation_categories: tuple[str, ...] = ()
    split_settings: dict[str, Any] | None = None
    encoder: str | None = None
    members: tuple[str, ...] = ()
    train_seconds: float = 0.0
    n_trainable_params: int | None = None
    peak_memory_mib: float | None = None
    training_log: Any = None  # the model's own per-epoch log (`training_log_`), when it trains
    zsrec_version: str = __version__
    created: str = ""
    command: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingRecord:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in values.items() if k in known}
        for name in ("heldout_categories", "validation_categories", "members", "command"):
            kwargs[name] = tuple(kwargs.get(name) or ())
        record = cls(**kwargs)
        if not isinstance(record.dataset, dict) or not isinstance(record.protocol, str):
            raise TypeError("dataset must be an object and protocol a string")
        if record.level is not None and not isinstance(record.level, int):
            raise TypeError(f"level must be an integer, got {record.level!r}")
        return record


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def count_trainable(model: Recommender) -> int | None:
    """Trainable parameters a fitted model reports (`n_trainable_params_`), else None."""
    value = getattr(model, "n_trainable_params_", None)
    return int(value) if value is not None else None


def fit_and_record(
    model: Recommender,
    data: Dataset,
    split: EvalSplit | None,
    split_settings: SplitSettings | None,
    *,
    encoder: str | None = None,
    members: tuple[str, ...] = (),
    command: tuple[str, ...] = (),
) -> TrainingRecord:
    """Fit `model` on the split's training data (or on all of `data` when `split` is None) and describe it."""
    start = time.perf_counter()
    model.fit(split.train if split is not None else data)
    seconds = time.perf_counter() - start
    validation = split.validation.heldout_categories if split is not None and split.validation is not None else ()
    return TrainingRecord(
        model=model.name,
        dataset=dataset_fingerprint(data),
        protocol=split.protocol if split is not None else ALL_DATA,
        level=split.level if split is not None else None,
        heldout_categories=tuple(split.heldout_categories) if split is not None else (),
        validation_categories=tuple(validation),
        split_settings=asdict(split_settings) if split is not None and split_settings is not None else None,
        encoder=encoder,
        members=members,
        train_seconds=round(seconds, 3),
        n_trainable_params=count_trainable(model),
        peak_memory_mib=round(peak_memory_mib(), 1),
        training_log=getattr(model, "training_log_", None),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command=command,
    )


def save_model_folder(
    model: Recommender,
    record: TrainingRecord,
    out: str | Path,
    *,
    overwrite: bool = False,
    extra: Any = None,
) -> Path:
    """Write the model and its `training.json` into `out`, all or nothing.

    Everything is written into a temporary sibling folder first, which then takes `out`'s name; a failure
    leaves `out` as it was. `extra(folder)`, when given, adds files (e.g. the service's catalog) before the swap.
    An existing non-empty `out` is replaced only with `overwrite`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the model")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out {out} is not empty; choose a new folder or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model.save(tmp)
        atomic_write_text(tmp / TRAINING_FILE, json.dumps(_jsonable(record.to_dict()), indent=2) + "\n")
        if extra is not None:
            extra(tmp)
        write_manifest(tmp)  # last, over everything the folder holds
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def is_model_folder(name: str) -> bool:
    """Whether a `--models` entry names a saved model folder rather than a registered model."""
    path = Path(name)
    return (path / "config.json").is_file()


def load_model_folder(directory: str | Path) -> tuple[Recommender, TrainingRecord | None]:
    """The model in a folder and its training record (None for a folder saved by `save` alone)."""
    directory = Path(directory)
    model = load_model(directory)
    path = directory / TRAINING_FILE
    if not path.is_file():
        return model, None
    try:
        return model, TrainingRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise CorruptModelError(f"{path}: not a readable training record ({' '.join(str(err).split())})") from err


def check_evaluable(
    record: TrainingRecord | None, data: Dataset, split: EvalSplit, where: str, *, min_history: int
) -> None:
    """Refuse (ConfigError) to evaluate a saved model on a split it could have learned the answers of.

    The catalog must be the one it was trained on, and every test item of `split` must have been held out
    when it was trained: its training split was leave-category-out and its held-out items cover `split`'s.
    """
    if record is None:
        raise ConfigError(
            f"{where} has no {TRAINING_FILE}, so nobody can tell which categories it learned from; "
            "evaluate models made by `zsrec train`"
        )
    if record.dataset.get("items_sha256") != dataset_fingerprint(data)["items_sha256"]:
        raise ConfigError(
            f"{where} was trained on another catalog ({record.dataset.get('name')}, "
            f"{record.dataset.get('n_items')} items) than {data.name} ({data.n_items} items)"
        )
    if record.dataset.get("users_sha256") != dataset_fingerprint(data)["users_sha256"]:
        raise ConfigError(f"{where} was trained on other users than those of {data.name}")
    if split.protocol == LEAVE_ONE_OUT and record.protocol == LEAVE_ONE_OUT:
        trained_min = (record.split_settings or {}).get("min_history")
        if trained_min == min_history:
            return
        raise ConfigError(
            f"{where} was trained on a leave-one-out split with min_history={trained_min}; evaluate it with "
            f"--min-history {trained_min} (another value changes which last items were held out)"
        )
    if record.protocol != LEAVE_CATEGORY_OUT or split.protocol != LEAVE_CATEGORY_OUT:
        raise ConfigError(
            f"{where} was trained with protocol {record.protocol!r} and saw interactions this "
            f"{split.protocol} evaluation tests; train it with the evaluation's split options "
            f"(--protocol {split.protocol} ...)"
        )
    held = record_heldout_items(record, data)
    leaked = np.setdiff1d(split.new_items, held)
    if len(leaked):
        cats = sorted(set(split.item_category[leaked].tolist()))
        raise ConfigError(
            f"{where} was trained on interactions of {len(leaked):,} of this evaluation's new items "
            f"(categories: {'; '.join(cats[:5])}{' …' if len(cats) > 5 else ''}); it held out "
            f"{'; '.join(record.heldout_categories)} at level {record.level}"
        )


def record_heldout_items(record: TrainingRecord, data: Dataset) -> np.ndarray:
    """Item indexes whose interactions a leave-category-out training record kept out of training."""
    if record.level is None or not record.heldout_categories:
        return np.empty(0, dtype=np.int64)
    categories = data.category_at(record.level)
    return np.flatnonzero(np.isin(categories, list(record.heldout_categories)))


def _jsonable(value: Any) -> Any:
    return json_ready(value)
