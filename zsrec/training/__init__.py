"""Training loops for the learned recommenders (the models themselves live in `zsrec.models`)."""

from __future__ import annotations

from zsrec.training.heads import (
    HeadTrainingSettings,
    ScoringHead,
    TrainingPairs,
    ValidationTask,
    build_training_pairs,
    history_vectors,
    train_head,
    validation_ndcg,
    validation_task,
)

__all__ = [
    "HeadTrainingSettings",
    "ScoringHead",
    "TrainingPairs",
    "ValidationTask",
    "build_training_pairs",
    "history_vectors",
    "train_head",
    "validation_ndcg",
    "validation_task",
]
