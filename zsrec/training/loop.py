"""The one epoch loop every trainer runs: train an epoch, validate, keep the best epoch, stop when it stops
improving, and gate a trained epoch against the untrained start.

A trainer brings what differs: `train_epoch` (one pass over its pairs, returning its losses) and `validate`
(its validation score: per-user NDCG@10 for the rankers, macro-F1 for the cross-encoder). The loop owns what is
the same: epoch 0 (the untrained model, where it competes), the best epoch's weights, patience, the epoch gate
and the per-epoch log each trainer records in training.json:
`[{"epoch", "loss", "adversarial_loss"?, <validation fields>, "seconds"}, ...]`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from zsrec.data.splits import EvalSplit
from zsrec.models.selection import gate_trained_epoch

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Validation:
    """One validation of the model: the score the loop compares (higher is better) and what the epoch logs."""

    score: float
    per_user: np.ndarray | None  # per-user values of `score`, for the epoch gate (None = no gate)
    log: dict[str, Any]  # fields added to the epoch's log entry


def ndcg_validation(values: np.ndarray | float) -> Validation:
    """A ranker's validation from its per-user NDCG@10 (or one number): logged as "validation_ndcg@10"."""
    score = float(np.mean(values))
    per_user = np.asarray(values, dtype=np.float64) if np.ndim(values) else None
    return Validation(score, per_user, {"validation_ndcg@10": score})


def describe_validation(split: EvalSplit) -> dict[str, Any]:
    """What a trainer records about its validation categories in training.json."""
    return {
        "level": split.level,
        "categories": list(split.heldout_categories),
        "users": len(split.test_users),
        "items": len(split.new_items),
    }


@dataclass(frozen=True)
class Stopping:
    """How the loop chooses its epoch."""

    patience: int | None  # stop after this many epochs (at least 1) without a better score; None = train all
    untrained: bool = True  # epoch 0, the untrained model, is validated and may be kept
    epoch_gate: float | None = None  # a trained best epoch must beat epoch 0 per user at this confidence
    seed: int = 0  # seeds the gate's bootstrap


@dataclass(frozen=True)
class EpochLog:
    """What the loop did: the per-epoch log, the epoch whose weights the model holds, and why."""

    epochs: list[dict[str, Any]]
    best_epoch: int  # the number of epochs trained when nothing was validated
    best_score: float | None  # its validation score; None without validation
    stopped_early: bool
    epoch_gate: dict[str, Any] | None  # `gate_trained_epoch`'s verdict, None where nothing was gated


def train_epochs(
    model: nn.Module,
    train_epoch: Callable[[], dict[str, float]],
    validate: Callable[[], Validation] | None,
    epochs: int,
    stopping: Stopping,
    *,
    trainable_only: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> EpochLog:
    """Run up to `epochs` passes of `train_epoch` over `model` and leave the chosen epoch's weights in it.

    With `validate`, the best-scoring epoch is kept (epoch 0 = the untrained model, when `stopping.untrained`);
    training stops after `stopping.patience` epochs without a better score, and a trained best epoch is kept
    only if `gate_trained_epoch` passes it, else the untrained weights are. Without `validate`, every epoch
    runs and the last is kept. `trainable_only` copies only the trainable tensors as the best state (a LoRA
    adapter, not the whole encoder); `on_epoch` receives each log entry as it is made.
    """
    log: list[dict[str, Any]] = []
    best_epoch, best, best_state, stopped_early = epochs, float("-inf"), None, False
    untrained: Validation | None = None
    untrained_state: State | None = None
    best_users: np.ndarray | None = None  # the best epoch's per-user validation values
    if validate is not None and stopping.untrained:
        untrained_state = _copy_state(model, trainable_only)
        untrained = validate()
        best_epoch, best, best_state = 0, untrained.score, untrained_state
        log.append({"epoch": 0, "loss": None, **untrained.log, "seconds": 0.0})
        if on_epoch is not None:
            on_epoch(log[-1])
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        entry: dict[str, Any] = {"epoch": epoch, **train_epoch()}
        if validate is not None:
            result = validate()
            entry.update(result.log)
            if result.score > best:
                best_epoch, best, best_users = epoch, result.score, result.per_user
                # the last epoch's weights stay in the model: no copy needed
                best_state = _copy_state(model, trainable_only) if epoch < epochs else None
        entry["seconds"] = time.perf_counter() - start
        log.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
        patience = stopping.patience
        if validate is not None and patience is not None and epoch - best_epoch >= max(1, patience):
            stopped_early = epoch < epochs
            break
    untrained_users = None if untrained is None else untrained.per_user
    gate = gate_trained_epoch(best_epoch, best_users, untrained_users, stopping.epoch_gate, stopping.seed)
    if gate is not None and not gate["kept"] and untrained is not None:
        best_epoch, best, best_state = 0, untrained.score, untrained_state
    if best_epoch != log[-1]["epoch"] and best_state is not None:
        model.load_state_dict(best_state, strict=not trainable_only)
    return EpochLog(log, best_epoch, None if validate is None else best, stopped_early, gate)


def _copy_state(model: nn.Module, trainable_only: bool) -> State:
    """A detached copy of `model`'s state, or of its trainable tensors only."""
    state = model.state_dict()
    if trainable_only:
        names = {name for name, p in model.named_parameters() if p.requires_grad}
        state = {k: v for k, v in state.items() if k in names}
    return {k: v.detach().clone() for k, v in state.items()}
