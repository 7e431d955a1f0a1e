"""Training a scoring head over frozen text embeddings: settings, training pairs, validation, the loop.

A head scores (user vector, item vector) pairs. The item vector is the item's frozen text embedding e_i;
the user vector e_u is the normalised mean of the user's history embeddings (optionally plus their profile
text's). Training pairs come from the training interactions: for an interaction (u, i) the input is u's
history *without the items of i's category* and the target is i, which is the situation of a new category
at test time. Early stopping watches NDCG@10 on validation categories held out of the training data itself
(the way `zero-shot` tunes), and the best epoch's weights are kept.

Adversarial training (`adversarial=AdversarialSettings(augment=("stuffing",))`, `zsrec train --adversarial
augment=stuffing`): keyword-stuffed copies of training items (other categories' frequent title words appended
to their titles, encoded once by the frozen encoder) join each batch as extra negatives, so the head learns
not to be pulled to an item by foreign words. With `stuffing_loss="no-gain"` they stay out of the softmax
and a logistic penalty (times `adversarial.weight`) applies wherever a stuffed copy outscores its own
original for a batch's user: stuffing should not pay, while which items are relevant is left to the clean
loss. The embedding-space attacks (FGM/PGD) and the title perturbations of positives need an encoder that
trains; a head refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from torch import nn

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit, default_validation_level, first_validation_split
from zsrec.encoders.base import l2_normalize
from zsrec.errors import ConfigError
from zsrec.evaluation.ranking import new_pool_ndcg
from zsrec.training.loop import Stopping, describe_validation, ndcg_validation, train_epochs
from zsrec.training.settings import Choice, RankingTrainingSettings, set_choice


class Loss(Choice):
    """A head's training loss."""

    SOFTMAX = "softmax"  # sampled softmax over the positive and its negatives
    BPR = "bpr"  # pairwise logistic: the positive above each negative


class Negatives(Choice):
    """Where a pair's negatives come from."""

    CATEGORY = "category"  # the positive's own category (batches are formed per category)
    CATALOG = "catalog"  # any item of a category with training interactions


@dataclass(frozen=True)
class HeadTrainingSettings(RankingTrainingSettings):
    """How a head is trained, and how its validation categories are held out."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4  # pulls the residual heads back to zero-shot
    max_pairs: int = 200_000
    loss: Loss = Loss.SOFTMAX  # "softmax": sampled softmax over positive + negatives; "bpr": pairwise logistic
    # Where negatives come from: "category" = the positive's own category (batches are formed per category),
    # as at test time, where every candidate is in a new category and the question is which of its items;
    # "catalog" = any item of a category with training interactions.
    negatives: Negatives = Negatives.CATEGORY
    # Negatives drawn uniformly (shared by a batch; a category smaller than this gives all its items). Uniform,
    # not in-batch: in-batch negatives are drawn by popularity, which cancels the item prior a head should learn.
    n_negatives: int = 128
    in_batch_negatives: bool = False  # also use the batch's other positives as negatives
    hidden_dim: int = 128  # hidden width of the heads' MLPs (two-tower-head: 0 = linear residual maps)
    proj_dim: int = 64  # mlp-head: width the embeddings are projected to before their pairwise features
    refit: bool = False  # after early stopping, retrain on all the data for the best number of epochs
    # adversarial (inherited): only `augment=("stuffing",)` (with augment_prob, stuffing_words, seed) applies

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("proj_dim", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_negatives", "hidden_dim"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        set_choice(self, "loss", Loss)
        set_choice(self, "negatives", Negatives)
        if self.n_negatives == 0 and not self.in_batch_negatives:
            raise ConfigError("n_negatives must be >= 1 when in_batch_negatives is off, got 0")
        if self.adversarial.method != "none" or set(self.adversarial.augment) - {"stuffing"}:
            raise ConfigError(
                "a head over frozen embeddings takes only adversarial augment=stuffing (stuffed negatives); "
                f"got method={self.adversarial.method!r}, augment={'+'.join(self.adversarial.augment)!r} "
                "(embedding attacks and perturbed positives need a trained encoder: two-tower-lora/-full)"
            )


@dataclass(frozen=True)
class StuffedNegatives:
    """Keyword-stuffed copies of training items for adversarial training: `vectors[j]` embeds the text of item
    `items[j]` with other categories' frequent title words appended to its title."""

    items: torch.Tensor  # (n,) the items stuffed
    vectors: torch.Tensor  # (n, d) their stuffed texts' embeddings
    prob: float  # each pair of a batch adds one stuffed copy with this probability
    no_gain: bool = False  # False: the copies are negatives; True: penalised where they outscore their originals
    weight: float = 1.0  # no_gain: the penalty's weight next to the clean loss

    def __post_init__(self) -> None:
        if len(self.items) != len(self.vectors):
            raise ConfigError(f"{len(self.items)} stuffed items but {len(self.vectors)} vectors")


class ScoringHead(nn.Module):
    """Scores (user vector, item vector) pairs; subclasses implement `pair_scores`."""

    pairs_per_chunk = 1 << 16  # `scores` works through users in chunks of about this many pairs

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """users (B, d), items (N, d), cand (B, M) row indexes into items -> scores (B, M)."""
        raise NotImplementedError

    @torch.no_grad()
    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Every user against every item: (B, N)."""
        rows = max(1, self.pairs_per_chunk // max(1, len(items)))
        cand = torch.arange(len(items)).expand(min(rows, max(1, len(users))), -1)
        out = [self.pair_scores(chunk, items, cand[: len(chunk)]) for chunk in users.split(rows)]
        return torch.cat(out) if out else torch.empty((0, len(items)))


def history_vectors(
    histories: list[np.ndarray],
    item_vectors: np.ndarray,
    profile_vectors: np.ndarray | None = None,
    profile_weight: float = 0.0,
) -> np.ndarray:
    """Per user (n_users, d): normalise(mean of history item vectors), then + profile_weight · profile vector
    and normalised again. A user with neither gets a zero vector."""
    lengths = np.asarray([len(h) for h in histories], dtype=np.int64)
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if len(histories) else np.empty(0, dtype=np.int64)
    mean = sparse.csr_matrix(
        (1.0 / lengths[rows], (rows, cols)), shape=(len(histories), len(item_vectors)), dtype=np.float32
    )
    x = l2_normalize(np.asarray(mean @ item_vectors))
    if profile_vectors is not None and profile_weight > 0:
        x = l2_normalize(x + np.float32(profile_weight) * profile_vectors)
    return x


@dataclass(frozen=True)
class TrainingPairs:
    """(input history → target item) pairs: a pair's input is its user's history minus a removed part."""

    users: torch.Tensor  # (n,) user of each pair
    items: torch.Tensor  # (n,) target item of each pair
    removed: torch.Tensor  # (n,) row of `removed_sums` taken out of the user's history
    user_sums: torch.Tensor  # (n_users, d) sum of each user's history item vectors
    user_counts: torch.Tensor  # (n_users,) history lengths
    removed_sums: torch.Tensor  # (n_removed, d)
    removed_counts: torch.Tensor  # (n_removed,)
    profiles: torch.Tensor | None  # (n_users, d) profile vectors already times profile_weight, or None
    groups: torch.Tensor  # (n,) category of each pair's target (an index into `group_items`)
    group_items: list[torch.Tensor]  # per category, its items: where "category" negatives come from
    catalog: torch.Tensor  # items of the categories with training interactions: "catalog" negatives

    def __len__(self) -> int:
        return len(self.items)

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """User vectors (len(idx), d) of the pairs `idx`, computed as `history_vectors` does."""
        u, r = self.users[idx], self.removed[idx]
        count = (self.user_counts[u] - self.removed_counts[r]).unsqueeze(1)
        x = F.normalize((self.user_sums[u] - self.removed_sums[r]) / count, dim=1)
        return x if self.profiles is None else F.normalize(x + self.profiles[u], dim=1)


def build_training_pairs(
    data: Dataset,
    item_vectors: np.ndarray,
    settings: HeadTrainingSettings,
    *,
    profile_vectors: np.ndarray | None = None,
    profile_weight: float = 0.0,
) -> TrainingPairs:
    """One pair per interaction of `data` whose user has history left once the removed part is gone."""
    users = data.interactions["user"].to_numpy().astype(np.int64)
    items = data.interactions["item"].to_numpy().astype(np.int64)
    ones = np.ones(len(items), dtype=np.float32)
    user_sums = sparse.csr_matrix((ones, (users, items)), shape=(data.n_users, data.n_items)) @ item_vectors
    user_counts = np.bincount(users, minlength=data.n_users)
    _, category = np.unique(
        data.category_at(settings.level or default_validation_level(data)).astype(str), return_inverse=True
    )
    if settings.pair_history == "leave-one-out":
        removed, removed_sums, removed_counts = items, item_vectors, np.ones(data.n_items, dtype=np.int64)
    else:  # remove all of the user's items in the target's category
        keys, removed = np.unique(users * (category.max() + 1) + category[items], return_inverse=True)
        removed_sums = sparse.csr_matrix((ones, (removed, items)), shape=(len(keys), data.n_items)) @ item_vectors
        removed_counts = np.bincount(removed, minlength=len(keys))
    keep = np.flatnonzero(user_counts[users] > removed_counts[removed])
    if len(keep) == 0:
        raise ConfigError(
            f"no training pairs: no user has history outside a target's category ({settings.pair_history=}); "
            "try pair_history='leave-one-out'"
        )
    if len(keep) > settings.max_pairs:
        keep = np.sort(np.random.default_rng(settings.seed).choice(keep, size=settings.max_pairs, replace=False))
    profiles = None
    if profile_vectors is not None and profile_weight > 0:
        profiles = torch.from_numpy(np.float32(profile_weight) * profile_vectors)
    return TrainingPairs(
        users=torch.from_numpy(users[keep]),
        items=torch.from_numpy(items[keep]),
        removed=torch.from_numpy(removed[keep]),
        user_sums=torch.from_numpy(np.asarray(user_sums, dtype=np.float32)),
        user_counts=torch.from_numpy(user_counts).float(),
        removed_sums=torch.from_numpy(np.asarray(removed_sums, dtype=np.float32)),
        removed_counts=torch.from_numpy(removed_counts).float(),
        profiles=profiles,
        groups=torch.from_numpy(category[items[keep]]),
        group_items=[torch.from_numpy(np.flatnonzero(category == c)) for c in range(category.max() + 1)],
        catalog=torch.from_numpy(np.flatnonzero(np.isin(category, category[items]))),
    )


@dataclass(frozen=True)
class ValidationTask:
    """Validation categories held out of the training data: learn from `split.train`, rank `split.new_items`."""

    split: EvalSplit
    user_vectors: np.ndarray  # (n_users, d) from the histories in split.train
    item_vectors: np.ndarray  # (n_items, d)
    seed: int  # tie-break order of the ranking (as target_ranks)

    def describe(self) -> dict[str, Any]:
        return describe_validation(self.split)


def validation_task(
    data: Dataset,
    item_vectors: np.ndarray,
    settings: HeadTrainingSettings,
    *,
    profile_vectors: np.ndarray | None = None,
    profile_weight: float = 0.0,
) -> ValidationTask | None:
    """A seeded leave-category-out task on `data` (as `zero-shot` draws its first fold), or None when it would
    have fewer than `min_validation_users` users."""
    split = first_validation_split(data, settings)
    if split is None:
        return None
    users = history_vectors(split.train.histories(), item_vectors, profile_vectors, profile_weight)
    return ValidationTask(split, users, item_vectors, settings.seed)


def validation_ndcg(head: ScoringHead, task: ValidationTask) -> np.ndarray:
    """NDCG@10 of `head` for each validation user, ranking the validation categories' items."""
    split = task.split
    users = torch.from_numpy(task.user_vectors[split.test_users])
    items = torch.from_numpy(task.item_vectors[split.new_items])
    scores = head.scores(users, items).numpy()
    return new_pool_ndcg(scores, split, seed=task.seed)


def head_loss(scores: torch.Tensor, cand: torch.Tensor, settings: HeadTrainingSettings) -> torch.Tensor:
    """Loss of scores (B, M) whose column 0 is each pair's positive; negatives equal to it are ignored."""
    logits = scores / settings.temperature
    hit = cand[:, 1:] == cand[:, :1]  # (B, M-1) a "negative" that is the positive itself
    if settings.loss == "softmax":
        negatives = logits[:, 1:].masked_fill(hit, float("-inf"))
        target = torch.zeros(len(logits), dtype=torch.long)
        return F.cross_entropy(torch.cat([logits[:, :1], negatives], dim=1), target)
    valid = (~hit).float()
    pairwise = -F.logsigmoid(logits[:, :1] - logits[:, 1:])  # BPR: positive above each negative
    return (pairwise * valid).sum() / valid.sum().clamp(min=1.0)


def _batches(pairs: TrainingPairs, settings: HeadTrainingSettings, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch's batches of pair indexes, shuffled; with "category" negatives each batch is one category's."""
    order = torch.randperm(len(pairs), generator=gen)
    if settings.negatives == "catalog":
        return list(order.split(settings.batch_size))
    order = order[torch.argsort(pairs.groups[order], stable=True)]
    sizes = torch.bincount(pairs.groups[order]).tolist()
    batches = [b for group in order.split(sizes) if len(group) for b in group.split(settings.batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def _candidates(
    positives: torch.Tensor, pool: torch.Tensor, settings: HeadTrainingSettings, gen: torch.Generator
) -> torch.Tensor:
    """(B, M) items per pair: the positive, then shared uniform negatives from `pool`, then (optionally) the
    batch's other positives."""
    b = len(positives)
    parts = [positives[:, None]]
    if settings.n_negatives >= len(pool):  # a small pool: all of it (a full softmax)
        parts.append(pool.expand(b, -1))
    elif settings.n_negatives:
        drawn = pool[torch.randint(len(pool), (settings.n_negatives,), generator=gen)]
        parts.append(drawn.expand(b, -1))
    if settings.in_batch_negatives:
        parts.append(positives.expand(b, -1))
    return torch.cat(parts, dim=1)


def train_head(
    head: ScoringHead,
    pairs: TrainingPairs,
    item_vectors: torch.Tensor,
    settings: HeadTrainingSettings,
    *,
    validate: Callable[[ScoringHead], np.ndarray | float] | None = None,
    epochs: int | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    stuffed: StuffedNegatives | None = None,
) -> dict[str, Any]:
    """Train `head` in place through the one epoch loop (`zsrec.training.loop.train_epochs`).

    With `validate` (per-user validation NDCG, or one number; higher is better), stop after `patience` epochs
    without a better mean and leave the best epoch's weights in `head` (epoch 0 = the untrained head); with
    per-user values and `epoch_gate`, a trained best epoch is kept only if its gain over epoch 0 clears the
    paired gate, else the untrained head is (log["epoch_gate"]). `on_epoch` receives each epoch's log entry as
    it is made (the CLI prints it). With `stuffed` (adversarial training), stuffed copies of items of each
    batch's negative pool join the batch as negatives, or with `stuffed.no_gain` are penalised where they
    outscore their originals.

    Returns the log: {"epochs": [{"epoch", "loss", "validation_ndcg@10", "seconds"}, ...], "best_epoch",
    "best_validation_ndcg@10", "stopped_early", "epoch_gate"}.
    """
    s = settings
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(s.threads)
    # One seed, one model: the backward of `items[cand]` (index_put with accumulate) sums in a thread-dependent
    # order on a multi-threaded CPU unless deterministic algorithms are on, and training amplifies the difference
    torch.use_deterministic_algorithms(True)
    try:
        gen = torch.Generator().manual_seed(s.seed)
        extra = None if stuffed is None else _StuffedPools(pairs, stuffed, len(item_vectors), s)
        if extra is not None:
            item_vectors = torch.cat([item_vectors, stuffed.vectors])  # stuffed copy j is row len(items) + j
        optimizer = torch.optim.AdamW(head.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        result = train_epochs(
            head,
            lambda: {"loss": _train_epoch(head, pairs, item_vectors, optimizer, s, gen, extra)},
            None if validate is None else lambda: ndcg_validation(validate(head.eval())),
            s.epochs if epochs is None else epochs,
            Stopping(s.patience, epoch_gate=s.epoch_gate, seed=s.seed),
            on_epoch=on_epoch,
        )
        return {
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "best_validation_ndcg@10": result.best_score,
            "stopped_early": result.stopped_early,
            "epoch_gate": result.epoch_gate,
        }
    finally:
        head.eval()
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def _train_epoch(
    head: ScoringHead,
    pairs: TrainingPairs,
    item_vectors: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    s: HeadTrainingSettings,
    gen: torch.Generator,
    stuffed: _StuffedPools | None = None,
) -> float:
    """One pass over the pairs; returns the mean loss."""
    head.train()
    total = 0.0
    for batch in _batches(pairs, s, gen):
        users = pairs.inputs(batch)  # (B, d)
        group = None if s.negatives == "catalog" else int(pairs.groups[batch[0]])
        pool = pairs.catalog if group is None else pairs.group_items[group]
        cand = _candidates(pairs.items[batch], pool, s, gen)  # (B, M), column 0 = the positive
        copies = torch.empty(0, dtype=torch.long)
        if stuffed is not None:
            copies = stuffed.draw(group, pairs.items[batch], gen)
            if not stuffed.stuffed.no_gain:  # the copies join the softmax as negatives
                cand = torch.cat([cand, copies.expand(len(batch), -1)], dim=1)
        ids, local = torch.unique(cand, return_inverse=True)  # score each distinct item once
        loss = head_loss(head.pair_scores(users, item_vectors[ids], local), cand, s)  # scalar
        if stuffed is not None and stuffed.stuffed.no_gain and len(copies):
            loss = loss + stuffed.stuffed.weight * stuffed.no_gain_penalty(head, users, item_vectors, copies, s)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(pairs)


class _StuffedPools:
    """Which stuffed copies a batch may draw: those of items in its negative pool (its category's items, or
    the catalog), never a copy of one of its positives."""

    def __init__(self, pairs: TrainingPairs, stuffed: StuffedNegatives, n_items: int, s: HeadTrainingSettings):
        self.stuffed = stuffed
        self.n_items = n_items
        rows = n_items + torch.arange(len(stuffed.items))
        if s.negatives == "catalog":
            self.pools = {None: rows[torch.isin(stuffed.items, pairs.catalog)]}
        else:
            group_of = torch.full((n_items,), -1, dtype=torch.long)
            for g, members in enumerate(pairs.group_items):
                group_of[members] = g
            groups = group_of[stuffed.items]
            self.pools = {g: rows[groups == g] for g in range(len(pairs.group_items))}

    def draw(self, group: int | None, positives: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Stuffed rows for one batch: about `prob` per pair, distinct."""
        pool = self.pools[group]
        pool = pool[~torch.isin(self.stuffed.items[pool - self.n_items], positives)]
        n = min(len(pool), int((torch.rand(len(positives), generator=gen) < self.stuffed.prob).sum()))
        return pool[torch.randperm(len(pool), generator=gen)[:n]]

    def no_gain_penalty(
        self,
        head: ScoringHead,
        users: torch.Tensor,
        item_vectors: torch.Tensor,
        copies: torch.Tensor,
        s: HeadTrainingSettings,
    ) -> torch.Tensor:
        """Mean softplus((score(u, stuffed copy) - score(u, its original)) / temperature) over the batch's
        users and `copies` (rows of `item_vectors`)."""
        originals = self.stuffed.items[copies - self.n_items]
        rows = torch.cat([copies, originals])
        n = len(copies)
        scores = head.pair_scores(users, item_vectors[rows], torch.arange(2 * n).expand(len(users), -1))
        return F.softplus((scores[:, :n] - scores[:, n:]) / s.temperature).mean()
