"""The one epoch loop (early stopping, best weights, epoch gate) and the settings every trainer shares."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn

from zsrec.errors import ConfigError
from zsrec.training.contrastive import ContrastiveSettings
from zsrec.training.cross_encoder import CrossEncoderTrainingSettings
from zsrec.training.heads import HeadTrainingSettings
from zsrec.training.loop import Stopping, Validation, ndcg_validation, train_epochs
from zsrec.training.options import parse_fields
from zsrec.training.settings import Postprocess, TrainingSettings

TRAINERS = (ContrastiveSettings, HeadTrainingSettings, CrossEncoderTrainingSettings)


class Counter(nn.Module):
    """A model whose one weight counts the epochs trained (each `step` adds 1); `frozen` never trains."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.frozen = nn.Parameter(torch.full((1,), 7.0), requires_grad=False)

    def step(self) -> dict[str, float]:
        with torch.no_grad():
            self.weight += 1
        return {"loss": 1.0 / self.weight.item()}


def scripted(scores: list[float | np.ndarray]) -> tuple[list[int], object]:
    """A validation that returns `scores` in turn (epoch 0 first), recording how often it ran."""
    calls: list[int] = []

    def validate() -> Validation:
        calls.append(1)
        return ndcg_validation(scores[len(calls) - 1])

    return calls, validate


def test_early_stopping_keeps_the_best_epochs_weights_and_logs_each_epoch() -> None:
    model = Counter()
    calls, validate = scripted([0.5, 0.6, 0.55, 0.58, 0.9])
    seen: list[dict] = []
    log = train_epochs(model, model.step, validate, 10, Stopping(patience=2), on_epoch=seen.append)
    assert len(calls) == 4 and [e["epoch"] for e in log.epochs] == [0, 1, 2, 3]  # epoch 4 never ran
    assert log.best_epoch == 1 and log.best_score == pytest.approx(0.6) and log.stopped_early
    assert model.weight.item() == 1.0  # epoch 1's weights are back in place
    assert log.epochs[0] == {"epoch": 0, "loss": None, "validation_ndcg@10": 0.5, "seconds": 0.0}
    assert set(log.epochs[2]) == {"epoch", "loss", "validation_ndcg@10", "seconds"}
    assert seen == log.epochs and log.epoch_gate is None


def test_without_validation_every_epoch_runs_and_the_last_is_kept() -> None:
    model = Counter()
    log = train_epochs(model, model.step, None, 3, Stopping(patience=1))
    assert [e["epoch"] for e in log.epochs] == [1, 2, 3] and model.weight.item() == 3.0
    assert log.best_epoch == 3 and log.best_score is None and not log.stopped_early


@pytest.mark.parametrize(("gain", "kept"), [(0.01, False), (0.3, True)])
def test_a_trained_best_epoch_must_beat_epoch_0_per_user(gain: float, kept: bool) -> None:
    noise = np.random.default_rng(0).normal(0, 0.3, size=40)
    noise -= noise.mean()
    start = np.full(40, 0.5)
    model = Counter()
    _, validate = scripted([start, start + gain + noise])
    log = train_epochs(model, model.step, validate, 1, Stopping(patience=1, epoch_gate=0.95))
    assert log.epoch_gate is not None and log.epoch_gate["kept"] is kept and log.epoch_gate["epoch"] == 1
    assert log.best_epoch == (1 if kept else 0)
    assert model.weight.item() == (1.0 if kept else 0.0)
    assert log.best_score == pytest.approx(0.5 + gain if kept else 0.5)


def test_without_an_untrained_start_or_patience_the_best_epoch_wins_after_all_epochs() -> None:
    model = Counter()
    calls, validate = scripted([0.2, 0.7, 0.1, 0.3])  # no epoch 0: these are epochs 1-4
    log = train_epochs(model, model.step, validate, 4, Stopping(patience=None, untrained=False))
    assert len(calls) == 4 and log.epochs[0]["epoch"] == 1 and not log.stopped_early
    assert log.best_epoch == 2 and model.weight.item() == 2.0


def test_trainable_only_copies_restore_the_trainable_tensors() -> None:
    model = Counter()
    _, validate = scripted([0.1, 0.9, 0.2, 0.2])
    log = train_epochs(model, model.step, validate, 3, Stopping(patience=5), trainable_only=True)
    assert log.best_epoch == 1 and model.weight.item() == 1.0 and model.frozen.item() == 7.0


def test_a_single_number_validates_but_cannot_be_gated() -> None:
    v = ndcg_validation(0.25)
    assert v.score == 0.25 and v.per_user is None and v.log == {"validation_ndcg@10": 0.25}


# -- settings ---------------------------------------------------------------------------------------------
def test_the_trainers_share_one_base_and_keep_their_own_defaults() -> None:
    assert all(issubclass(cls, TrainingSettings) for cls in TRAINERS)
    assert [cls().epochs for cls in TRAINERS] == [2, 20, 1]
    assert [cls().patience for cls in TRAINERS[:2]] == [1, 3]
    with pytest.raises(TypeError):
        TrainingSettings()  # each trainer states its own epochs, batch size, lr, weight decay and pairs


@pytest.mark.parametrize("cls", TRAINERS)
@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("lr", 0.0), ("validation_fraction", 1.0), ("level", 0), ("min_validation_users", -1)],
)
def test_every_trainer_refuses_a_bad_shared_setting(cls: type, field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^{field} must be"):
        cls(**{field: value})


@pytest.mark.parametrize("cls", TRAINERS)
def test_settings_survive_config_json_with_choices_as_plain_strings(cls: type) -> None:
    settings = cls(level=2, seed=3)
    values = json.loads(json.dumps(asdict(settings)))
    assert cls(**values) == settings


def test_a_choice_reads_as_its_string() -> None:
    settings = HeadTrainingSettings(postprocess="none", loss="bpr")
    assert settings.postprocess is Postprocess.NONE and settings.postprocess == "none"
    assert "postprocess='none'" in repr(settings) and "loss='bpr'" in repr(settings)
    with pytest.raises(ConfigError, match=r"^loss must be one of \('softmax', 'bpr'\), got 'hinge'"):
        HeadTrainingSettings(loss="hinge")


def test_choices_come_from_the_command_line() -> None:
    values = parse_fields(ContrastiveSettings, "user_side=text,batching=category,epochs=1", "--training")
    settings = ContrastiveSettings(**values)
    assert settings.user_side == "text" and settings.batching == "category" and settings.epochs == 1
