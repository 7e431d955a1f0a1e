"""Classification metrics as pure functions on arrays: predicted labels from logits, accuracy, P/R/F1.

The cross-encoder (`zsrec.training.cross_encoder`) is a sequence classifier: its logits are (batch,
num_labels), one row per (user, item) pair, so the predicted label is the argmax over the *last* axis. The
seed took `logits.argmax(dim=2)`, which is only right for token classification (batch, tokens, num_labels);
on (batch, num_labels) it fails, and on a stray 3-D tensor it silently predicts per token.
`predicted_labels` accepts only 2-D logits for that reason.

>>> import numpy as np
>>> y_pred = predicted_labels(np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.2]]))
>>> y_pred.tolist()
[0, 1, 0, 0]
>>> m = classification_metrics(np.array([0, 1, 1, 0]), y_pred, n_labels=2)
>>> round(m["accuracy"], 4), round(m["f1_macro"], 4), round(m["f1_micro"], 4)
(0.75, 0.7333, 0.75)
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_metrics", "confusion_matrix", "predicted_labels"]


def predicted_labels(logits: np.ndarray) -> np.ndarray:
    """Argmax over the label axis of sequence-classification logits (batch, num_labels) -> (batch,) int64."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(
            f"logits must be 2-D (batch, num_labels) for sequence classification, got shape {logits.shape}"
        )
    if logits.shape[1] < 1:
        raise ValueError(f"logits need at least one label column, got shape {logits.shape}")
    return logits.argmax(axis=1).astype(np.int64)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_labels: int) -> np.ndarray:
    """(n_labels, n_labels) counts: row = true label, column = predicted label."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    labels, predictions = _check(labels, predictions, n_labels)
    if len(labels) == 0:  # scikit-learn refuses empty input
        return np.zeros((n_labels, n_labels), dtype=np.int64)
    return sk_confusion_matrix(labels, predictions, labels=np.arange(n_labels)).astype(np.int64)


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, n_labels: int) -> dict[str, float]:
    """Accuracy and precision / recall / F1, macro (mean over labels) and micro (over all pairs), by scikit-learn.

    Macro averages every label in 0..n_labels-1; a label with no predicted (no true) example has precision
    (recall) 0 (`zero_division=0`). For single-label classification the micro precision, recall and F1 all
    equal the accuracy; they are reported anyway, so that both averages are always there.

    Returns {"accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_micro", "recall_micro",
    "f1_micro", "n"}; all nan when there are no examples.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels, predictions = _check(labels, predictions, n_labels)
    keys = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_micro", "recall_micro", "f1_micro")
    if len(labels) == 0:
        return {**dict.fromkeys(keys, float("nan")), "n": 0.0}
    out = {"accuracy": float(accuracy_score(labels, predictions))}
    for average in ("macro", "micro"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predictions, labels=np.arange(n_labels), average=average, zero_division=0
        )
        out |= {
            f"precision_{average}": float(precision),
            f"recall_{average}": float(recall),
            f"f1_{average}": float(f1),
        }
    return {**out, "n": float(len(labels))}


def _check(labels: np.ndarray, predictions: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_labels, bool) or not isinstance(n_labels, int | np.integer) or n_labels < 1:
        raise ValueError(f"n_labels must be an integer >= 1, got {n_labels!r}")
    labels = np.asarray(labels).astype(np.int64, copy=False).ravel()
    predictions = np.asarray(predictions).astype(np.int64, copy=False).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions differ in length: {labels.shape[0]} vs {predictions.shape[0]}")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if len(values) and (values.min() < 0 or values.max() >= n_labels):
            raise ValueError(f"{name} must lie in [0, {n_labels - 1}], got values {values.min()}..{values.max()}")
    return labels, predictions
