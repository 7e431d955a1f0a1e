"""Contrastive fine-tuning of a text encoder as a two-tower recommender: (user history text → next item text).

One shared transformer encodes both sides (a siamese two-tower): the user side is the titles of the user's
recent history items, the item side the item's catalog text (`ItemTextTemplate`). Training pairs come from
the training interactions only: for an interaction (u, i) the input is u's history *without the items of i's
category* (the situation of a new category at test time) and the target is i. The loss is the softmax over
in-batch negatives (the batch's other positives), at a temperature.

Early stopping watches NDCG@10 on validation categories carved out of the training data
(`validation_category_splits`, as `zero-shot` and the heads do), scored by the evaluator's own
`target_ranks`; epoch 0 is the untrained encoder, and the best epoch's trainable weights are kept, a trained
epoch only if its per-user gain over the untrained encoder clears a paired bootstrap gate (`epoch_gate`).
Adversarial training (FGM/PGD on the word embeddings, text augmentation) comes in through
`ContrastiveSettings.adversarial`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, default_validation_level, first_validation_split
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.evaluation.ranking import new_pool_ndcg
from zsrec.reporting import Reporter, SilentReporter
from zsrec.training.adversarial import AdversarialSettings, TextAugmenter, backward_with_attack
from zsrec.training.loop import Stopping, Validation, describe_validation, ndcg_validation, train_epochs
from zsrec.training.settings import Choice, RankingTrainingSettings, set_choice
from zsrec.vectors import catalog_mean, recentre


class UserSide(Choice):
    """How a user is encoded."""

    TEXT = "text"  # the recent history titles as one query text
    ITEMS = "items"  # the normalised mean of the recent history items' vectors (zero-shot-mean's user, fine-tuned)


class Batching(Choice):
    """How training pairs are grouped into batches."""

    RANDOM = "random"
    CATEGORY = "category"  # each batch's targets share a category: the in-batch negatives are the same category's


@dataclass(frozen=True)
class ContrastiveSettings(RankingTrainingSettings):
    """How the encoder is fine-tuned, and how its validation categories are held out."""

    epochs: int = 2
    batch_size: int = 32  # the other positives of a batch are each pair's negatives
    lr: float = 1e-4  # LoRA likes ~1e-3, full fine-tuning ~3e-5
    weight_decay: float = 0.01
    # Training pairs per epoch at most (a seeded sample; keeps a CPU run short). More pairs did not help: a
    # LoRA epoch on several times as many pairs lowered validation NDCG (docs/benchmarks.md).
    max_pairs: int = 1000
    patience: int = 1
    max_grad_norm: float = 1.0  # gradient clipping (0 = off)
    history_items: int = 8  # a pair's input (and a "text" user): this many most recent history items or titles
    # Users when scoring and validating (user_side="items"): the mean of this many most recent history items'
    # vectors; None = the whole history (zero-shot-mean's user). Training pairs keep `history_items` (their cost
    # grows with it). On Complete Journey the untrained centred encoder scores clearly better with the whole
    # history than with the last few items.
    score_history_items: int | None = None
    user_max_length: int = 96  # tokens of a user text (longer are cut: the most recent titles come first)
    item_max_length: int = 64  # tokens of an item text
    # The user side: "text" = the recent history titles as one query text; "items" = the normalised mean of
    # the recent history items' vectors from the same encoder (zero-shot-mean's user, fine-tuned).
    user_side: UserSide = UserSide.ITEMS
    # "random" batches, or "category": each batch's targets share a category, so the in-batch negatives are
    # items of the positive's own category, as when ranking the items of a new category.
    batching: Batching = Batching.RANDOM
    max_validation_users: int = 400  # a seeded sample of validation users (encoding them costs time per epoch)
    encode_batch_size: int = 64  # texts per forward pass when encoding without gradients
    device: str = "cpu"  # torch device ("cpu", "cuda")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("history_items", "encode_batch_size", "max_validation_users"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("user_max_length", "item_max_length"):
            if getattr(self, name) < 4:
                raise ConfigError(f"{name} must be >= 4, got {getattr(self, name)}")
        if self.max_grad_norm < 0:
            raise ConfigError(f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (in-batch negatives), got {self.batch_size}")
        if self.score_history_items is not None and self.score_history_items < 1:
            raise ConfigError(f"score_history_items must be >= 1 or None, got {self.score_history_items}")
        set_choice(self, "user_side", UserSide)
        set_choice(self, "batching", Batching)
        if self.adversarial.stuffing_loss != "negatives":
            raise ConfigError(
                "the encoder trainer uses stuffed copies as negatives only (stuffing_loss=negatives); "
                f"got stuffing_loss={self.adversarial.stuffing_loss!r}, which the heads implement"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ContrastiveSettings:
        values = dict(values)
        # folders saved before centring and whole-history users scored raw vectors of the last history_items
        values.setdefault("postprocess", "none")
        values.setdefault("score_history_items", values.get("history_items", cls.history_items))
        values["adversarial"] = AdversarialSettings.from_dict(values.get("adversarial") or {})
        return cls(**values)


# -- the encoder being trained ------------------------------------------------------------------------------
class TextTower(nn.Module):
    """A transformers encoder + its tokenizer, mean-pooled and L2-normalised (all-MiniLM-L6-v2's pooling)."""

    def __init__(self, model: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        """Texts -> (len(texts), d) unit vectors."""
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, d) mean over real tokens
        return F.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], max_length: int, batch_size: int = 64) -> np.ndarray:
        """(len(texts), d) float32 unit vectors, in length-sorted batches; empty texts get zero vectors."""
        was_training = self.training
        self.eval()
        try:
            texts = list(texts)
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            filled = [i for i, t in enumerate(texts) if t.strip()]
            order = sorted(filled, key=lambda i: -len(texts[i]))
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = self([texts[i] for i in idx], max_length).float().cpu().numpy()
            return out
        finally:
            self.train(was_training)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def total_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


# -- user texts and training pairs ----------------------------------------------------------------------
def history_text(titles: Sequence[str], history: np.ndarray, n: int) -> str:
    """The user side: titles of the `n` most recent history items, most recent first, "; "-joined."""
    recent = history[::-1][:n]
    return "; ".join(titles[int(i)] for i in recent)


def user_texts(titles: Sequence[str], histories: Sequence[np.ndarray], n: int) -> list[str]:
    return [history_text(titles, h, n) for h in histories]


@dataclass(frozen=True)
class ContrastivePairs:
    """(input history → target item) pairs; each input history is already cut to its recent items."""

    histories: list[np.ndarray]  # per pair, the input history's item indexes (oldest first)
    items: np.ndarray  # (n,) target item indexes
    groups: np.ndarray  # (n,) category (index) of each target, for "category" batches

    def __len__(self) -> int:
        return len(self.items)


def build_pairs(data: Dataset, settings: ContrastiveSettings) -> ContrastivePairs:
    """One pair per sampled interaction whose user keeps some history once the removed part is gone."""
    level = settings.level or default_validation_level(data)
    _, category = np.unique(data.category_at(level).astype(str), return_inverse=True)
    rng = np.random.default_rng(settings.seed)
    all_histories = data.histories()
    users = data.interactions["user"].to_numpy()
    targets = data.interactions["item"].to_numpy()
    histories, items = [], []
    for row in rng.permutation(len(users)):
        history, target = all_histories[int(users[row])], int(targets[row])
        if settings.pair_history == "leave-one-out":
            rest = history[history != target]
        else:
            rest = history[category[history] != category[target]]
        if len(rest) == 0:
            continue
        histories.append(rest[-settings.history_items :])
        items.append(target)
        if len(items) >= settings.max_pairs:
            break
    if not items:
        raise ConfigError(
            f"no training pairs: no user has history outside a target's category ({settings.pair_history=}); "
            "try pair_history='leave-one-out'"
        )
    items_arr = np.asarray(items, dtype=np.int64)
    return ContrastivePairs(histories, items_arr, category[items_arr])


def centring_mean(raw: np.ndarray, settings: ContrastiveSettings) -> np.ndarray:
    """(1, d): the catalog mean of raw item vectors with `postprocess="center"`, else zeros (no centring)."""
    if settings.postprocess == "center" and len(raw):
        return catalog_mean(raw)[None, :].astype(np.float32)
    return np.zeros((1, raw.shape[1]), dtype=np.float32)


def user_vectors(
    tower: TextTower,
    histories: Sequence[np.ndarray],
    titles: Sequence[str],
    item_vectors: np.ndarray | Callable[[np.ndarray], np.ndarray],
    settings: ContrastiveSettings,
    mean: np.ndarray | None = None,
) -> np.ndarray:
    """Users' vectors (len(histories), d) for scoring, without gradients, as `settings.user_side` defines them.

    Args:
        item_vectors: for "items", the (already centred) item vectors (n_items, d), or a function from item
            indexes to theirs; users are the normalised mean over their `score_history_items` latest items.
        mean: the catalog mean that "text" users are centred by, as the items were (None = not centred).
    """
    if settings.user_side == "text":
        texts = user_texts(titles, histories, settings.history_items)
        vectors = tower.encode(texts, settings.user_max_length, settings.encode_batch_size)
        return vectors if mean is None else recentre(vectors, mean)
    n = settings.score_history_items
    recent = [np.asarray(h, dtype=np.int64)[-n:] if n else np.asarray(h, dtype=np.int64) for h in histories]
    needed = np.unique(np.concatenate(recent)) if recent else np.empty(0, dtype=np.int64)
    vectors = item_vectors(needed) if callable(item_vectors) else np.asarray(item_vectors)[needed]
    row = np.full(int(needed.max()) + 1 if len(needed) else 0, -1, dtype=np.int64)
    row[needed] = np.arange(len(needed))
    out = np.zeros((len(histories), tower.dim), dtype=np.float32)
    for u, h in enumerate(recent):
        if len(h):
            out[u] = vectors[row[h]].mean(0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


# -- validation ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContrastiveValidation:
    """Validation categories held out of the training data, with a seeded sample of their users."""

    split: EvalSplit
    histories: list[np.ndarray]  # per split.test_users, their history outside the validation categories
    seed: int

    def describe(self) -> dict[str, Any]:
        return describe_validation(self.split)


def validation_task(data: Dataset, settings: ContrastiveSettings) -> ContrastiveValidation | None:
    """The first seeded validation fold of `data` (None when it has too few users), users capped."""
    split = first_validation_split(data, settings)
    if split is None:
        return None
    if len(split.test_users) > settings.max_validation_users:
        keep = np.sort(
            np.random.default_rng(settings.seed).choice(
                len(split.test_users), size=settings.max_validation_users, replace=False
            )
        )
        split = replace(split, test_users=split.test_users[keep], targets=[split.targets[k] for k in keep])
    histories = split.train.histories()
    return ContrastiveValidation(split, [histories[int(u)] for u in split.test_users], settings.seed)


def validation_ndcg(
    tower: TextTower,
    task: ContrastiveValidation,
    titles: Sequence[str],
    item_texts: Sequence[str],
    settings: ContrastiveSettings,
) -> np.ndarray:
    """Per-user NDCG@10 of the validation users, ranking the validation categories' items by cosine, with the
    vectors the model would serve (centred by the whole catalog's mean under `postprocess="center"`)."""
    split = task.split

    def encode_items(idx: np.ndarray) -> np.ndarray:
        texts = [item_texts[int(i)] for i in idx]
        return tower.encode(texts, settings.item_max_length, settings.encode_batch_size)

    if settings.postprocess == "center":  # the mean needs every item: encode the catalog once
        raw = encode_items(np.arange(len(item_texts)))
        mean = centring_mean(raw, settings)
        vectors = recentre(raw, mean)
        users = user_vectors(tower, task.histories, titles, vectors, settings, mean=mean)
        items = vectors[split.new_items]
    else:  # only the items the validation users and categories need
        users = user_vectors(tower, task.histories, titles, encode_items, settings)
        items = encode_items(split.new_items)
    scores = users @ items.T
    return new_pool_ndcg(scores, split, seed=task.seed)


# -- the loop ------------------------------------------------------------------------------------------
def in_batch_loss(users: torch.Tensor, items: torch.Tensor, item_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax over in-batch negatives. users (B, d), items (B + E, d): rows 0..B-1 are the positives, any
    extra rows are negatives for every user. item_ids (B + E,) masks a negative equal to the positive."""
    logits = users @ items.T / temperature  # (B, B + E)
    b = len(users)
    same = item_ids[None, :] == item_ids[:b, None]  # (B, B + E) another row holding the same item
    same[torch.arange(b), torch.arange(b)] = False
    logits = logits.masked_fill(same, float("-inf"))
    return F.cross_entropy(logits, torch.arange(b, device=logits.device))


def train_contrastive(
    tower: TextTower,
    data: Dataset,
    template: ItemTextTemplate,
    settings: ContrastiveSettings,
    *,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Fine-tune `tower`'s trainable parameters in place on the interactions of `data` (items rendered by
    `template`).

    With enough validation users, holds validation categories out of `data`, trains on the rest, validates
    after each epoch and keeps the best epoch's weights (epoch 0 = untrained); with `epoch_gate`, a trained best
    epoch is kept only if its per-user gain over epoch 0 clears the paired gate, else the untrained weights are.
    Returns the log: {"epochs": [{"epoch", "loss", "adversarial_loss", "validation_ndcg@10", "seconds"}, ...],
    "best_epoch", "best_validation_ndcg@10", "stopped_early", "epoch_gate", "pairs", "validation",
    "trainable_params", "seconds"}.
    """
    s = settings
    reporter = reporter or SilentReporter()
    titles = data.items["title"].astype(str).tolist()
    item_texts = template.render(data.items)
    threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    started = time.perf_counter()
    try:
        torch.manual_seed(s.seed)
        task = validation_task(data, s)
        train_data = data if task is None else task.split.train
        pairs = build_pairs(train_data, s)
        level = s.level or default_validation_level(data)
        augmenter = TextAugmenter.for_training(
            data.items, data.category_at(level), pairs.items, template, s.adversarial
        )
        trainable = [p for p in tower.parameters() if p.requires_grad]
        if not trainable:
            raise ConfigError("the encoder has no trainable parameters")
        optimizer = torch.optim.AdamW(trainable, lr=s.lr, weight_decay=s.weight_decay)
        validate: Callable[[], Validation] | None = None
        if task is not None:
            reporter.message(
                f"validation: {len(task.split.test_users)} users, {len(task.split.new_items)} items of "
                f"{len(task.split.heldout_categories)} categories held out of the training data"
            )
            validate = lambda: ndcg_validation(validation_ndcg(tower, task, titles, item_texts, s))  # noqa: E731
        rng = np.random.default_rng(s.seed)
        result = train_epochs(
            tower,
            lambda: _train_epoch(tower, pairs, titles, item_texts, optimizer, augmenter, s, rng, reporter),
            validate,
            s.epochs,
            Stopping(s.patience, epoch_gate=s.epoch_gate, seed=s.seed),
            trainable_only=True,
            on_epoch=lambda entry: reporter.message(_epoch_line(entry)),
        )
        gate = result.epoch_gate
        if gate is not None and not gate["kept"]:
            reporter.message(
                f"epoch gate: the untrained encoder is kept (epoch {gate['epoch']}'s validation gain "
                f"{gate['gain']:+.4f}, CI [{gate['ci'][0]:+.4f}, {gate['ci'][1]:+.4f}])"
            )
        return {
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "best_validation_ndcg@10": result.best_score,
            "stopped_early": result.stopped_early,
            "epoch_gate": gate,
            "pairs": len(pairs),
            "validation": None if task is None else task.describe(),
            "trainable_params": tower.trainable_parameters(),
            "seconds": time.perf_counter() - started,
        }
    finally:
        tower.eval()
        torch.set_num_threads(threads)


def _epoch_line(entry: dict[str, Any]) -> str:
    """How an epoch's log entry is reported, e.g. "epoch 1: loss 2.3026, validation NDCG@10 0.1234 (12 s)"."""
    ndcg = entry.get("validation_ndcg@10")
    if entry["epoch"] == 0:
        return f"epoch 0 (untrained): validation NDCG@10 {ndcg:.4f}"
    valid = "" if ndcg is None else f", validation NDCG@10 {ndcg:.4f}"
    return f"epoch {entry['epoch']}: loss {entry['loss']:.4f}{valid} ({entry['seconds']:.0f} s)"


def _train_epoch(
    tower: TextTower,
    pairs: ContrastivePairs,
    titles: Sequence[str],
    item_texts: Sequence[str],
    optimizer: torch.optim.Optimizer,
    augmenter: TextAugmenter,
    s: ContrastiveSettings,
    rng: np.random.Generator,
    reporter: Reporter,
) -> dict[str, float]:
    """One pass over the pairs in shuffled batches; returns the mean clean (and adversarial) loss."""
    tower.train()
    batches = [b for b in _batches(pairs, s, rng) if len(b) >= 2]  # a lone pair has no negative
    totals: dict[str, float] = {}
    seen = 0
    with reporter.progress(f"training epoch ({len(pairs)} pairs)", len(pairs)) as advance:
        for batch in batches:
            histories = [pairs.histories[i] for i in batch]
            positives = pairs.items[batch]
            texts = [augmenter.positive(item_texts[int(i)], int(i), rng) for i in positives]
            extra_texts, extra_ids = augmenter.negatives(positives, rng)  # stuffed hard negatives
            ids = torch.as_tensor(np.concatenate([positives, extra_ids]), device=tower.device)

            loss_fn = partial(_batch_loss, tower, histories, titles, item_texts, texts + extra_texts, ids, s)
            optimizer.zero_grad(set_to_none=True)
            losses = backward_with_attack(tower.model, loss_fn, s.adversarial)
            if s.max_grad_norm > 0:
                nn.utils.clip_grad_norm_([p for p in tower.parameters() if p.requires_grad], s.max_grad_norm)
            optimizer.step()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + value * len(batch)
            seen += len(batch)
            advance(len(batch))
    return {key: value / max(1, seen) for key, value in totals.items()}


def _batch_loss(
    tower: TextTower,
    histories: list[np.ndarray],
    titles: Sequence[str],
    item_texts: Sequence[str],
    items: list[str],
    ids: torch.Tensor,
    s: ContrastiveSettings,
) -> torch.Tensor:
    v = tower(items, s.item_max_length)  # (B + E, d): positives, then stuffed negatives
    if s.user_side == "text":
        u = tower(user_texts(titles, histories, s.history_items), s.user_max_length)  # (B, d)
    else:  # mean of the history items' vectors, with gradients through the encoder
        flat = [item_texts[int(i)] for h in histories for i in h]
        segment = torch.as_tensor(np.repeat(np.arange(len(histories)), [len(h) for h in histories]), device=v.device)
        history = tower(flat, s.item_max_length)  # (sum of lengths, d)
        u = F.normalize(torch.zeros(len(histories), v.shape[1], device=v.device).index_add(0, segment, history), dim=-1)
    return in_batch_loss(u, v, ids, s.temperature)


def _batches(pairs: ContrastivePairs, s: ContrastiveSettings, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches of pair indexes, shuffled; with "category" batching each batch is one category's."""
    order = rng.permutation(len(pairs))
    if s.batching == "random":
        return [order[i : i + s.batch_size] for i in range(0, len(order), s.batch_size)]
    order = order[np.argsort(pairs.groups[order], kind="stable")]
    bounds = np.flatnonzero(np.diff(pairs.groups[order])) + 1
    batches = [g[i : i + s.batch_size] for g in np.split(order, bounds) for i in range(0, len(g), s.batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
