"""How much a recommender's ranking of new items suffers when sellers tamper with their text.

For each attack the held-out items' text is perturbed in the catalog (never the training items'), and the
model is scored on that catalog: a model that reads text at fit time (TF-IDF vocabularies, embeddings of the
whole catalog) is fitted again on the split's *training interactions* with the perturbed catalog, because
that is what it would see when the tampered items are listed; what it learns from interactions is unchanged,
since held-out items have none. A fitted model may instead offer `with_item_text(data) -> Recommender` (the
same learned parameters reading `data.items`' text, e.g. a fine-tuned encoder re-encoding the catalog); then
it is fitted once and that copy is scored.

Per attack: NDCG@k on the new pool, clean and attacked, and the drop with a paired bootstrap CI. For keyword
stuffing also the *stuffing success*: over (user, stuffed item the user did not pick) pairs, the mean rank
gain of the stuffed item, and the share of users for whom at least one such item enters their top-k (with
the same share for the untouched items as the baseline).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.data.splits import LEAVE_CATEGORY_OUT, EvalSplit
from zsrec.errors import ConfigError, check_at_least, check_at_most
from zsrec.evaluation.evaluate import MAX_BATCH_USERS, MAX_BOOTSTRAP
from zsrec.evaluation.metrics import bootstrap_ci, user_metrics
from zsrec.models.base import ReadsItemText, Recommender
from zsrec.robustness.attacks import ATTACKS, STUFFING, AttackSettings, choose_stuffed_items, perturb_items


@dataclass(frozen=True)
class RobustnessSettings:
    """Which attacks to run and how to measure them."""

    attacks: tuple[str, ...] = ATTACKS  # any of "typos", "stuffing", "noise", "no-brand"
    attack: AttackSettings = field(default_factory=AttackSettings)  # strength of each attack
    k: int = 10  # cut-off of NDCG and of the stuffing top-k share
    n_bootstrap: int = 1000  # resamples for the CIs (0 = none)
    seed: int = 0  # tie-breaking order of candidates and the bootstrap
    batch_size: int = 256  # users scored per call to `model.score`

    def __post_init__(self) -> None:
        bad = [a for a in self.attacks if a not in ATTACKS]
        if bad or not self.attacks:
            raise ConfigError(f"attacks must be a non-empty subset of {', '.join(ATTACKS)}, got {self.attacks}")
        check_at_least(self, k=1, n_bootstrap=0, batch_size=1)
        check_at_most(self, n_bootstrap=MAX_BOOTSTRAP, batch_size=MAX_BATCH_USERS)


@dataclass(frozen=True)
class AttackedSplit:
    """A split whose catalog has tampered text for some held-out items; users, targets and pool unchanged."""

    attack: str
    split: EvalSplit
    changed: np.ndarray  # item indexes whose text differs from the clean catalog
    stuffed: np.ndarray  # stuffing: the stuffed items (empty for the other attacks)


def attack_split(split: EvalSplit, attack: str, settings: AttackSettings) -> AttackedSplit:
    """Perturb the held-out items' text (only theirs) in `split.train`'s catalog."""
    if split.protocol != LEAVE_CATEGORY_OUT:
        raise ConfigError(f"robustness needs the {LEAVE_CATEGORY_OUT} protocol (new items), got {split.protocol}")
    items = split.train.items
    rows = choose_stuffed_items(split.new_items, settings) if attack == STUFFING else split.new_items
    perturbed = perturb_items(items, rows, attack, settings, categories=split.item_category)
    text_columns = [c for c in ("title", "description", "brand") if c in items.columns]
    before = items[text_columns].fillna("").astype(str).to_numpy()
    after = perturbed[text_columns].fillna("").astype(str).to_numpy()
    changed = np.flatnonzero((before != after).any(axis=1)).astype(np.int64)
    if np.setdiff1d(changed, split.new_items).size:  # the test items only, never the training ones
        raise AssertionError("an attack changed the text of an item outside the held-out pool")
    train = replace(split.train, items=perturbed)
    stuffed = rows if attack == STUFFING else np.empty(0, dtype=np.int64)
    return AttackedSplit(attack, replace(split, train=train), changed, stuffed)


def new_pool_ranks(
    model: Recommender,
    split: EvalSplit,
    watched: np.ndarray,
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[list[np.ndarray], np.ndarray]:
    """0-based ranks, in the new pool, of each test user's targets and of the `watched` items.

    Ties are broken by the same seeded candidate order as `zsrec.evaluation.evaluate.target_ranks`, so the
    target ranks equal the ones the evaluator computes.

    Returns:
        per test user the ranks of `split.targets[u]`, and an (n_users, len(watched)) array of watched ranks.
    """
    cand = split.new_items
    position = np.full(split.train.n_items, -1, dtype=np.int64)
    position[cand] = np.arange(len(cand))
    watched_pos = position[np.asarray(watched, dtype=np.int64)]
    if (watched_pos < 0).any():
        raise ConfigError("watched items must be in the new pool")
    tiebreak = np.random.default_rng(seed).random(len(cand))
    target_ranks: list[np.ndarray] = []
    watched_ranks = np.empty((len(split.test_users), len(watched_pos)), dtype=np.int64)
    for start, rank_of in _rank_batches(model, split.test_users, cand, tiebreak, batch_size):
        for row in range(len(rank_of)):
            target_ranks.append(rank_of[row, position[split.targets[start + row]]])
        watched_ranks[start : start + len(rank_of)] = rank_of[:, watched_pos]
    return target_ranks, watched_ranks


def _rank_batches(
    model: Recommender, users: np.ndarray, cand: np.ndarray, tiebreak: np.ndarray, batch_size: int
) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = np.nan_to_num(np.asarray(model.score(batch, cand), dtype=np.float64), nan=-np.inf)
        if scores.shape != (len(batch), len(cand)):
            raise ValueError(
                f"{type(model).__name__}.score returned {scores.shape}, expected {(len(batch), len(cand))}"
            )
        order = np.lexsort((np.broadcast_to(tiebreak, scores.shape), -scores), axis=-1)
        rank_of = np.empty_like(order)
        np.put_along_axis(rank_of, order, np.arange(len(cand))[None, :].repeat(len(batch), 0), axis=1)
        yield start, rank_of


def stuffing_success(
    clean_ranks: np.ndarray, attacked_ranks: np.ndarray, stuffed: np.ndarray, targets: list[np.ndarray], k: int
) -> dict[str, float]:
    """How far stuffed items climb for users who did not pick them.

    Args:
        clean_ranks, attacked_ranks: (n_users, n_stuffed) ranks of the stuffed items before and after.
        stuffed: the stuffed item indexes; targets: per user their relevant items (those pairs are left out).

    Returns:
        mean_rank_gain (positions climbed, averaged over irrelevant pairs), median_rank_gain,
        top{k}_share (users with an irrelevant stuffed item in their top k after stuffing) and
        top{k}_share_clean (the same items, unstuffed).

    >>> clean, after = np.array([[50, 3], [40, 30]]), np.array([[2, 1], [45, 8]])
    >>> out = stuffing_success(clean, after, np.array([7, 9]), [np.array([9]), np.array([1])], 10)
    >>> out["mean_rank_gain"], out["top10_share"], out["top10_share_clean"]
    (21.666666666666668, 1.0, 0.0)
    """
    irrelevant = np.array([[item not in set(t.tolist()) for item in stuffed] for t in targets], dtype=bool)
    irrelevant = irrelevant.reshape(clean_ranks.shape)
    gain = (clean_ranks - attacked_ranks)[irrelevant].astype(np.float64)
    return {
        "mean_rank_gain": float(gain.mean()) if gain.size else float("nan"),
        "median_rank_gain": float(np.median(gain)) if gain.size else float("nan"),
        f"top{k}_share": float(((attacked_ranks < k) & irrelevant).any(axis=1).mean()) if len(targets) else 0.0,
        f"top{k}_share_clean": float(((clean_ranks < k) & irrelevant).any(axis=1).mean()) if len(targets) else 0.0,
    }


def robustness_of(
    fit: Callable[[Dataset], Recommender],
    split: EvalSplit,
    settings: RobustnessSettings | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Clean and attacked NDCG@k of the model `fit(data)` returns, and stuffing success; plain data out.

    Args:
        fit: builds and fits a fresh model on a dataset (called on `split.train`, and again on each attacked
            catalog unless the fitted model offers `with_item_text`).

    Returns:
        `{"clean": {"ndcg@k", "ndcg@k_ci", "n_users"}, "attacks": {attack: {"ndcg@k", "ndcg@k_drop",
        "ndcg@k_drop_ci", "relative_drop", "changed_items", ...stuffing_success for stuffing}}}`.
    """
    settings = settings or RobustnessSettings()
    say = progress or (lambda text: None)
    k, key = settings.k, f"ndcg@{settings.k}"
    stuffed = choose_stuffed_items(split.new_items, settings.attack) if STUFFING in settings.attacks else None
    watched = stuffed if stuffed is not None else np.empty(0, dtype=np.int64)
    model = fit(split.train)
    ranks, clean_watched = new_pool_ranks(model, split, watched, seed=settings.seed, batch_size=settings.batch_size)
    clean = user_metrics(ranks, len(split.new_items), (k,))[key]
    out: dict[str, Any] = {"clean": {key: float(clean.mean()), "n_users": len(clean)} | _ci(clean, key, settings)}
    out["attacks"] = {}
    for attack in settings.attacks:
        say(f"attack {attack}")
        attacked = attack_split(split, attack, settings.attack)
        if isinstance(model, ReadsItemText):
            attacked_model = model.with_item_text(attacked.split.train)
        else:
            attacked_model = fit(attacked.split.train)
        ranks, after_watched = new_pool_ranks(
            attacked_model, attacked.split, watched, seed=settings.seed, batch_size=settings.batch_size
        )
        after = user_metrics(ranks, len(split.new_items), (k,))[key]
        drop = clean - after
        result = {
            key: float(after.mean()),
            f"{key}_drop": float(drop.mean()),
            "relative_drop": float(drop.mean() / clean.mean()) if clean.mean() > 0 else float("nan"),
            "changed_items": len(attacked.changed),
        } | _ci(drop, f"{key}_drop", settings)
        if attack == STUFFING:
            result |= stuffing_success(clean_watched, after_watched, attacked.stuffed, split.targets, k)
            result["stuffed_items"] = len(attacked.stuffed)
        out["attacks"][attack] = result
    return out


def _ci(values: np.ndarray, key: str, settings: RobustnessSettings) -> dict[str, list[float]]:
    if settings.n_bootstrap == 0 or len(values) == 0:
        return {}
    lo, hi = bootstrap_ci(values, n_resamples=settings.n_bootstrap, seed=settings.seed)
    return {f"{key}_ci": [float(lo), float(hi)]}


def attack_examples(split: EvalSplit, settings: AttackSettings, attacks: tuple[str, ...], n: int = 2) -> dict:
    """A few before/after titles per attack, for reports (stuffing shows stuffed items)."""
    out = {}
    for attack in attacks:
        attacked = attack_split(split, attack, settings)
        rows = attacked.changed[:n]
        out[attack] = [
            {
                "before": str(split.train.items["title"].iloc[r]),
                "after": str(attacked.split.train.items["title"].iloc[r]),
            }
            for r in rows
        ]
    return out


def settings_dict(settings: RobustnessSettings) -> dict[str, Any]:
    return asdict(settings)
