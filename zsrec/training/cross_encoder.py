"""Training the rating / purchase classifier: a cross-encoder over (user text, item text) pairs.

A pair's first segment is the user: their profile text followed by the titles of their latest purchases
(latest first); the second is the item's text. The classifier is `AutoModelForSequenceClassification` on
the packaged encoder, so its logits are (batch, num_labels) and a prediction is the argmax over labels
(`zsrec.evaluation.classification.predicted_labels`).

Labels: where the interactions carry a `rating`, the classes are its distinct values (the classifier
predicts the rating of a purchase); otherwise interacted (1) vs sampled not-interacted (0) pairs. As in the
trained heads, a training pair's user text leaves out the user's items in the target's own category: at
test time the category is new, so the model must learn to bridge categories, not to spot repeats.

Validation pairs come from validation categories carved out of the training data (never the test
categories); the epoch with the best validation macro-F1 is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, default_validation_level
from zsrec.encoders.templates import ItemTextTemplate, UserTextTemplate
from zsrec.errors import ConfigError
from zsrec.evaluation.classification import classification_metrics, predicted_labels
from zsrec.evaluation.metrics import auc
from zsrec.training.adversarial import backward_with_attack
from zsrec.training.loop import Stopping, Validation, train_epochs
from zsrec.training.settings import Choice, TrainingSettings, set_choice


class LabelSource(Choice):
    """What the classifier predicts."""

    AUTO = "auto"  # the rating where the data has one, else interaction
    INTERACTION = "interaction"  # interacted (1) vs sampled not-interacted (0)
    RATING = "rating"  # the rating of a purchase


class Negatives(Choice):
    """Where sampled negatives (interaction labels) come from."""

    CATEGORY = "category"  # the positive's category
    CATALOG = "catalog"  # the whole catalog


#: a tiny randomly initialised BERT with MiniLM's tokenizer: for tests and smoke runs, not for results
TINY_RANDOM = "tiny-random"


@dataclass(frozen=True)
class CrossEncoderTrainingSettings(TrainingSettings):
    """How the cross-encoder learns (all of it from the training interactions)."""

    epochs: int = 1
    batch_size: int = 16
    lr: float = 3e-5  # peak, after linear warm-up; then linear decay to 0
    weight_decay: float = 0.01
    max_pairs: int = 4000  # interacted pairs drawn for training (each brings its negatives); caps the cost
    warmup_fraction: float = 0.1  # share of the steps spent warming the learning rate up
    max_length: int = 128  # tokens per pair (user and item segments together); the longer segment is cut first
    labels: LabelSource = LabelSource.AUTO  # "auto" (rating where the data has one), "interaction" or "rating"
    n_negatives: int = 1  # interaction labels: sampled not-interacted items per interacted pair
    negatives: Negatives = Negatives.CATEGORY  # sample negatives from the positive's category or the catalog
    max_validation_pairs: int = 1000  # interacted validation pairs (each brings its negatives)
    history_items: int = 8  # latest purchases named in the user text
    inference_batch_size: int = 64  # pairs per forward pass when scoring
    # adversarial (inherited): embedding attacks (FGM/PGD) only, no text augmentation

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_validation_pairs", "inference_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 8:
            raise ConfigError(f"max_length must be >= 8, got {self.max_length}")
        for name in ("n_negatives", "history_items"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        set_choice(self, "labels", LabelSource)
        set_choice(self, "negatives", Negatives)
        if self.adversarial.augment:
            raise ConfigError(
                "the cross-encoder trainer applies embedding attacks (adversarial.method fgm/pgd) but no text "
                f"augmentation; got adversarial.augment={self.adversarial.augment!r}"
            )


# -- labels and texts -------------------------------------------------------------------------------------
def label_source(data: Dataset, settings: CrossEncoderTrainingSettings) -> str:
    """ "rating" or "interaction": what `settings.labels` means on `data`."""
    has_rating = "rating" in data.interactions.columns and data.interactions["rating"].notna().any()
    if settings.labels == "rating" and not has_rating:
        raise ConfigError("labels='rating' but the interactions have no rating values; use 'auto' or 'interaction'")
    if settings.labels == "auto":
        return "rating" if has_rating else "interaction"
    return str(settings.labels)


def label_values(data: Dataset, source: str) -> list[float]:
    """The value each class stands for: [0, 1] (not interacted, interacted) or the sorted distinct ratings."""
    if source == "interaction":
        return [0.0, 1.0]
    values = np.unique(data.interactions["rating"].dropna().to_numpy(dtype=np.float64))
    if len(values) < 2:
        raise ConfigError(f"labels='rating' needs at least 2 distinct ratings, found {values.tolist()}")
    return values.tolist()


def rating_class(values: Sequence[float], rating: float) -> int:
    """The class of a rating: the index of the nearest label value."""
    return int(np.argmin(np.abs(np.asarray(values, dtype=np.float64) - rating)))


@dataclass(frozen=True)
class PairTexts:
    """Renders the two segments of a pair: user text (profile + latest purchases) and item text."""

    item_texts: list[str]  # per item index, the item segment
    titles: list[str]  # per item index, its title (how a purchase is named in a user text)
    profiles: list[str]  # per user index, their profile text ("" when none)
    history_items: int

    @classmethod
    def build(
        cls, data: Dataset, item_template: ItemTextTemplate, user_template: UserTextTemplate, history_items: int
    ) -> PairTexts:
        return cls(
            item_texts=item_template.render(data.items),
            titles=[" ".join(str(t).split()) for t in data.items["title"].tolist()],
            profiles=user_template.render(data.users),
            history_items=history_items,
        )

    def user_text(self, user: int, history: np.ndarray) -> str:
        """e.g. "Age: 35-44. Bought: Nitrile gloves; Lab coat." (the latest `history_items`, latest first)."""
        latest = [self.titles[int(i)] for i in history[::-1][: self.history_items]]
        bought = ("Bought: " + "; ".join(latest) + ".") if latest else ""
        return " ".join(part for part in (self.profiles[int(user)], bought) if part)


@dataclass(frozen=True)
class PairSet:
    """Labelled (user text, item) pairs."""

    users: np.ndarray  # (n,) user index of each pair
    items: np.ndarray  # (n,) item index
    labels: np.ndarray  # (n,) class index into the label values
    user_texts: list[str]  # (n,) the user segment of each pair

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, idx: np.ndarray) -> PairSet:
        return PairSet(self.users[idx], self.items[idx], self.labels[idx], [self.user_texts[i] for i in idx])


def _assemble(rows: list[tuple[int, int, int, str]]) -> PairSet:
    if not rows:
        return PairSet(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), [])
    users, items, labels, texts = zip(*rows, strict=True)
    return PairSet(
        np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64), np.asarray(labels, np.int64), list(texts)
    )


def _negatives(rng: np.random.Generator, pool: np.ndarray, seen: set[int], n: int, fallback: np.ndarray) -> list[int]:
    """Up to `n` distinct items of `pool` outside `seen` (from `fallback` when `pool` runs out)."""
    out: list[int] = []
    for source in (pool, fallback):
        free = source[~np.isin(source, np.fromiter(seen | set(out), dtype=np.int64))] if len(source) else source
        take = min(n - len(out), len(free))
        if take > 0:
            out += rng.choice(free, size=take, replace=False).tolist()
        if len(out) >= n:
            break
    return out


def training_pairs(
    data: Dataset, texts: PairTexts, settings: CrossEncoderTrainingSettings, source: str, values: Sequence[float]
) -> PairSet:
    """Pairs from `data.interactions`: each drawn interaction (u, i) with u's history minus i's category as
    the user text, labelled by its rating or as interacted, plus `n_negatives` sampled items labelled 0."""
    s = settings
    rng = np.random.default_rng(s.seed)
    inter = data.interactions
    if source == "rating":
        inter = inter[inter["rating"].notna()]
    users = inter["user"].to_numpy().astype(np.int64)
    items = inter["item"].to_numpy().astype(np.int64)
    ratings = inter["rating"].to_numpy(dtype=np.float64) if source == "rating" else None
    category = _category_codes(data, s.level)
    histories = data.histories()
    order = rng.permutation(len(items))
    by_category = _items_by_category(category, np.unique(data.interactions["item"].to_numpy()))
    catalog = np.unique(data.interactions["item"].to_numpy()).astype(np.int64)
    rows: list[tuple[int, int, int, str]] = []
    taken = 0
    for j in order:
        if taken >= s.max_pairs:
            break
        u, i = int(users[j]), int(items[j])
        h = histories[u]
        rest = h[category[h] != category[i]]
        if len(rest) == 0:  # nothing outside the target's category to go on
            continue
        text = texts.user_text(u, rest)
        taken += 1
        if ratings is not None:
            rows.append((u, i, rating_class(values, ratings[j]), text))
            continue
        rows.append((u, i, 1, text))
        pool = by_category[category[i]] if s.negatives == "category" else catalog
        for neg in _negatives(rng, pool, set(h.tolist()), s.n_negatives, catalog):
            rows.append((u, int(neg), 0, text))
    if not rows:
        raise ConfigError("no training pairs: no user has history outside a target's category")
    return _assemble(rows)


def task_pairs(
    split: EvalSplit,
    texts: PairTexts,
    settings: CrossEncoderTrainingSettings,
    source: str,
    values: Sequence[float],
    *,
    ratings: pd.DataFrame | None = None,
    max_pairs: int | None = None,
    seed: int | None = None,
) -> PairSet:
    """Pairs of a leave-category-out task (validation, or the test categories for a report): each test user's
    held-out interactions, with their training history as the user text.

    Interaction labels: each held-out interaction (1) with negatives drawn from the held-out items the user did
    not interact with (0; the same category where the level allows). Rating labels: the held-out interactions
    that have a rating in `ratings` (an interaction log with `user`, `item`, `rating`, e.g. the full data's).
    """
    s = settings
    rng = np.random.default_rng(s.seed + 1 if seed is None else seed)
    data = split.train
    category = _category_codes(data, s.level)
    by_category = _items_by_category(category, split.new_items)
    histories = data.histories()
    rating_of: dict[tuple[int, int], float] = {}
    if source == "rating":
        if ratings is None:
            raise ConfigError("rating labels on a held-out task need the interaction log with its ratings")
        rated = ratings[ratings["rating"].notna()]
        rating_of = dict(
            zip(zip(rated["user"].tolist(), rated["item"].tolist(), strict=True), rated["rating"].tolist(), strict=True)
        )
    candidates = [(row, int(t)) for row in range(len(split.test_users)) for t in split.targets[row]]
    if source == "rating":
        candidates = [(row, t) for row, t in candidates if (int(split.test_users[row]), t) in rating_of]
    limit = max_pairs or s.max_validation_pairs
    if len(candidates) > limit:
        candidates = [candidates[k] for k in np.sort(rng.choice(len(candidates), size=limit, replace=False))]
    rows: list[tuple[int, int, int, str]] = []
    for row, target in candidates:
        u = int(split.test_users[row])
        text = texts.user_text(u, histories[u])
        if source == "rating":
            rows.append((u, target, rating_class(values, rating_of[(u, target)]), text))
            continue
        rows.append((u, target, 1, text))
        pool = by_category[category[target]] if s.negatives == "category" else split.new_items
        seen = set(split.targets[row].tolist()) | set(histories[u].tolist())
        for neg in _negatives(rng, pool, seen, max(1, s.n_negatives), split.new_items):
            rows.append((u, int(neg), 0, text))
    return _assemble(rows)


def _category_codes(data: Dataset, level: int | None) -> np.ndarray:
    _, codes = np.unique(data.category_at(level or default_validation_level(data)).astype(str), return_inverse=True)
    return codes.astype(np.int64)


def _items_by_category(category: np.ndarray, items: np.ndarray) -> dict[int, np.ndarray]:
    items = np.asarray(items, dtype=np.int64)
    return {int(c): items[category[items] == c] for c in np.unique(category[items])}


# -- the model --------------------------------------------------------------------------------------------
def encode_pairs(tokenizer: Any, first: list[str], second: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """Token ids of the pairs, padded to the longest in the batch; the longer segment is cut first."""
    return tokenizer(
        first, second, truncation="longest_first", max_length=max_length, padding=True, return_tensors="pt"
    )


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    tokenizer: Any,
    user_texts: list[str],
    item_texts: list[str],
    *,
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """Logits (n, num_labels) of n pairs. Pairs are batched by length (less padding); the output keeps input order."""
    model.eval()
    n = len(user_texts)
    num_labels = int(model.config.num_labels)
    out = np.zeros((n, num_labels), dtype=np.float32)
    order = np.argsort([len(a) + len(b) for a, b in zip(user_texts, item_texts, strict=True)], kind="stable")
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        batch = encode_pairs(tokenizer, [user_texts[i] for i in idx], [item_texts[i] for i in idx], max_length)
        out[idx] = model(**batch).logits.float().numpy()  # (B, num_labels)
    return out


def pair_scores(logits: np.ndarray, values: Sequence[float]) -> np.ndarray:
    """One ranking score per pair: the log-odds of "interacted" for two classes, else the expected rating."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]  # log p(1)/p(0): no saturation, unlike the probability
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p @ np.asarray(values, dtype=np.float64)


def pair_metrics(
    model: torch.nn.Module,
    tokenizer: Any,
    pairs: PairSet,
    texts: PairTexts,
    settings: CrossEncoderTrainingSettings,
    values: Sequence[float],
) -> dict[str, float]:
    """Accuracy, P/R/F1 (macro, micro), mean cross-entropy and (two classes) AUC of the model on `pairs`."""
    logits = predict_logits(
        model,
        tokenizer,
        pairs.user_texts,
        [texts.item_texts[i] for i in pairs.items],
        max_length=settings.max_length,
        batch_size=settings.inference_batch_size,
    )
    out = classification_metrics(pairs.labels, predicted_labels(logits), n_labels=logits.shape[1])
    out["loss"] = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(pairs.labels)))
    if logits.shape[1] == 2 and 0 < pairs.labels.sum() < len(pairs):
        scores = pair_scores(logits, values)
        ranks = np.argsort(np.argsort(-scores, kind="stable"), kind="stable")
        out["auc"] = float(auc(ranks[pairs.labels == 1], len(scores)))
    return out


def count_trainable(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def train_cross_encoder(
    model: torch.nn.Module,
    tokenizer: Any,
    train: PairSet,
    texts: PairTexts,
    settings: CrossEncoderTrainingSettings,
    values: Sequence[float],
    *,
    validation: PairSet | None = None,
) -> dict[str, Any]:
    """Fine-tune `model` in place on `train`; with `validation`, keep the epoch with the best macro-F1.

    Returns {"epochs": [{"epoch", "loss", "adversarial_loss"?, "seconds", "validation": {...}?}, ...],
    "best_epoch", "train_pairs", "validation_pairs"}.
    """
    s = settings
    threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        gen = torch.Generator().manual_seed(s.seed)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=s.lr, weight_decay=s.weight_decay
        )
        steps_per_epoch = math.ceil(len(train) / s.batch_size)
        total = steps_per_epoch * s.epochs
        warmup = int(s.warmup_fraction * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, warmup, total))

        def validate() -> Validation:  # the epoch with the best macro-F1 wins; every epoch runs
            metrics = pair_metrics(model, tokenizer, validation, texts, s, values)
            return Validation(metrics["f1_macro"], None, {"validation": metrics})

        result = train_epochs(
            model,
            lambda: _train_epoch(model, tokenizer, train, texts, optimizer, scheduler, s, gen),
            validate if validation is not None and len(validation) else None,
            s.epochs,
            Stopping(patience=None, untrained=False),
        )
        return {
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "train_pairs": len(train),
            "validation_pairs": 0 if validation is None else len(validation),
        }
    finally:
        model.eval()
        torch.set_num_threads(threads)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def _train_epoch(
    model: torch.nn.Module,
    tokenizer: Any,
    pairs: PairSet,
    texts: PairTexts,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    s: CrossEncoderTrainingSettings,
    gen: torch.Generator,
) -> dict[str, float]:
    """One shuffled pass; returns the mean clean loss (and the mean adversarial loss when attacks are on)."""
    model.train()
    totals: dict[str, float] = {}
    for idx in torch.randperm(len(pairs), generator=gen).split(s.batch_size):
        rows = idx.numpy()
        batch = encode_pairs(
            tokenizer,
            [pairs.user_texts[r] for r in rows],
            [texts.item_texts[pairs.items[r]] for r in rows],
            s.max_length,
        )
        labels = torch.from_numpy(pairs.labels[rows])

        def loss_fn(batch: dict[str, torch.Tensor] = batch, labels: torch.Tensor = labels) -> torch.Tensor:
            return F.cross_entropy(model(**batch).logits, labels)  # logits (B, num_labels)

        optimizer.zero_grad(set_to_none=True)
        losses = backward_with_attack(model, loss_fn, s.adversarial)
        optimizer.step()
        scheduler.step()
        for key, value in losses.items():
            totals[key] = totals.get(key, 0.0) + value * len(rows)
    return {key: value / len(pairs) for key, value in totals.items()}
