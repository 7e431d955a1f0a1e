"""The warm-up protocol: how models do once the first adopters of the new categories have bought.

For each share in ascending order, the earliest adopters (`zsrec.data.reveal`) have their held-out interactions
revealed and leave the test set. Each model is fitted once on the split's training data, then folds in each
share's newly revealed interactions with `partial_fit` (shares are nested) and is scored on the users left.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from zsrec.data.dataset import Dataset
from zsrec.data.reveal import RevealStep, reveal_schedule
from zsrec.data.splits import LEAVE_CATEGORY_OUT, EvalSplit, SplitSettings
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings
from zsrec.evaluation.run import (
    ModelRun,
    RunOptions,
    check_request,
    prepare_split,
    score_model,
)
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.reporting import Reporter, SilentReporter, json_ready


def parse_reveal(text: str) -> tuple[str, ...]:
    """The shares of a `--reveal` value as written ("0,0.01" -> ("0", "0.01")), in ascending order.

    Each must be a number in [0, 1); empty elements ("0.1,,0.2") and repeated values are refused (ConfigError).
    """
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ConfigError(f"reveal must be comma-separated shares such as 0,0.01,0.05 (no empty element), got {text!r}")
    values: dict[float, str] = {}
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"reveal shares must be numbers in [0, 1), got {part!r} in {text!r}")
        if value in values:
            raise ConfigError(f"reveal share {part!r} repeats {values[value]!r} in {text!r}")
        values[value] = part
    return tuple(values[v] for v in sorted(values))


def check_reveal(reveal: Sequence[str], split_settings: SplitSettings) -> tuple[str, ...]:
    """Validate reveal shares given as strings (see `parse_reveal`) against the protocol; returns them sorted."""
    values = parse_reveal(",".join(reveal))
    if split_settings.protocol != LEAVE_CATEGORY_OUT:
        raise ConfigError(f"reveal needs the {LEAVE_CATEGORY_OUT} protocol, got {split_settings.protocol}")
    return values


def warmup_document(
    data: Dataset,
    split: EvalSplit,
    split_settings: SplitSettings,
    names: Sequence[str],
    eval_settings: EvalSettings,
    options: RunOptions,
    *,
    reveal: Sequence[str],
) -> dict[str, Any]:
    """Fit each model once on `split.train`, then evaluate it at each reveal share (seeded by the split's seed).

    Returns:
        with one share, `result_document`'s schema with `protocol.reveal` = {"value" (as written), "share",
        "n_revealed_users", "n_revealed_events"}; with several, `{"dataset", "reveal_values": [as written,
        ascending], "reveal": {value as written: that document}, "encoder", "zsrec_version", "created", "command"}`.
    """
    reporter = options.reporter or SilentReporter()
    values = check_reveal(reveal, split_settings)
    steps = reveal_schedule(split, [float(v) for v in values], seed=split_settings.seed)
    docs: dict[str, dict[str, Any]] = {}
    runs: list[ModelRun] = []
    for value, step in zip(values, steps, strict=True):
        reporter.message(
            f"reveal {value}: {step.n_revealed_users:,} adopters ({len(step.revealed):,} interactions) revealed, "
            f"{len(step.split.test_users):,} test users left"
        )
        if len(step.split.test_users) == 0:
            raise ConfigError(f"reveal {value} leaves no test user; use smaller shares")
        if not runs:
            min_history = split_settings.min_history
            runs = options.evaluate(step.split, names, eval_settings, min_history=min_history, revealed=step.new_events)
        else:
            runs = [_fold_in_and_score(run, step, eval_settings, reporter) for run in runs]
        doc = options.document(data, step.split, split_settings, runs)
        doc["protocol"]["reveal"] = {
            "value": value,
            "share": step.share,
            "n_revealed_users": step.n_revealed_users,
            "n_revealed_events": len(step.revealed),
        }
        docs[value] = doc
    if len(values) == 1:
        return docs[values[0]]
    first = docs[values[0]]
    return json_ready(
        {
            "dataset": first["dataset"],
            "dataset_fingerprint": first["dataset_fingerprint"],
            "reveal_values": list(values),
            "reveal": docs,
            **{key: first[key] for key in ("encoder", "zsrec_version", "created", "command")},
        }
    )


def _fold_in_and_score(run: ModelRun, step: RevealStep, settings: EvalSettings, reporter: Reporter) -> ModelRun:
    """A fitted model after one more share: fold in the newly revealed interactions, score the users left.
    Its `fit_seconds` is then the time `partial_fit` took."""
    start = time.perf_counter()
    if len(step.new_events):
        run.model.partial_fit(step.new_events)
    seconds = time.perf_counter() - start
    return score_model(run.name, run.model, step.split, settings, fit_seconds=seconds, reporter=reporter)


def run_warmup(
    dataset: str | Dataset,
    models: Sequence[str],
    split_settings: SplitSettings | None = None,
    eval_settings: EvalSettings | None = None,
    *,
    reveal: Sequence[str],
    encoder: str = "minilm",
    embeddings: EmbeddingSource | None = None,
    reporter: Reporter | None = None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """`run_evaluation` under the warm-up protocol: load, split, then `warmup_document`."""
    split_settings = split_settings or SplitSettings()
    eval_settings = eval_settings or EvalSettings()
    names = check_request(models, split_settings, eval_settings)
    check_reveal(reveal, split_settings)
    data, split = prepare_split(dataset, split_settings, reporter)
    options = RunOptions(encoder, embeddings, reporter, command)
    return warmup_document(data, split, split_settings, names, eval_settings, options, reveal=reveal)
