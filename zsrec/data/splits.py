"""Evaluation splits: leave-category-out (whole categories become "new"), sequential leave-one-out, and launch
day (held-out categories launch into each user's last window of interactions, among the old items)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from zsrec.data.dataset import CATEGORY_SEP, Dataset, user_item_lists
from zsrec.errors import ConfigError, check_at_least, check_choice, check_fraction

LEAVE_CATEGORY_OUT = "leave-category-out"
LEAVE_ONE_OUT = "leave-one-out"
LAUNCH = "launch"
PROTOCOLS = (LEAVE_CATEGORY_OUT, LEAVE_ONE_OUT, LAUNCH)
#: protocols that hold out whole categories (named, or a seeded fraction at a level)
CATEGORY_PROTOCOLS = (LEAVE_CATEGORY_OUT, LAUNCH)


@dataclass(frozen=True)
class SplitSettings:
    """How to hold data out for evaluation."""

    protocol: str = LEAVE_CATEGORY_OUT  # "leave-category-out", "leave-one-out" or "launch"
    level: int = 1  # category level whose categories are held out (1 = top level)
    categories: tuple[str, ...] = ()  # named test categories; empty = a seeded random fraction
    holdout_fraction: float = 0.2  # share of the level's categories held out for testing (when none are named)
    validation_fraction: float | None = None  # share held out for validation; None = as many as the test ones
    min_history: int = 3  # a test user needs at least this many interactions outside the held-out categories
    seed: int = 0
    # launch: the last share of each user's interactions (in time order, at least one) that is their test window
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        check_choice(self, "protocol", PROTOCOLS, shown=", ".join(PROTOCOLS))
        check_at_least(self, level=1)
        check_fraction(self, "holdout_fraction")
        if self.validation_fraction is not None and not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        check_at_least(self, min_history=1)
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


@dataclass(frozen=True)
class EvalSplit:
    """One evaluation task: what a model may learn from, whom it is tested on, and what they did.

    Attributes:
        train: the dataset with only the interactions a model may see (its users' histories included).
        test_users: user indexes under test.
        targets: per test user, the item indexes they interacted with that the model must find.
        new_items: the held-out items (the `new` candidate pool); empty for leave-one-out.
        heldout_categories: the held-out category paths (level-`level` prefixes).
        item_category: per item, its level-`level` category ("" where shallower); for per-category reports.
        validation: the same task on validation categories disjoint from the test ones (for tuning), or None.
        target_events: leave-category-out only: the test users' interactions with held-out items (the rows of
            the source log, `timestamp` included), which the warm-up protocol reveals (`zsrec.data.reveal`).
    """

    protocol: str
    level: int | None
    train: Dataset
    test_users: np.ndarray
    targets: list[np.ndarray]
    new_items: np.ndarray
    heldout_categories: tuple[str, ...] = ()
    item_category: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    validation: EvalSplit | None = None
    target_events: pd.DataFrame | None = None

    @property
    def pools(self) -> tuple[str, ...]:
        if self.protocol == LAUNCH:
            return ("launch",)
        return ("new", "all") if self.protocol == LEAVE_CATEGORY_OUT else ("all",)

    def candidates(self, pool: str) -> np.ndarray:
        """Candidate item indexes of a pool: `new` = held-out items, `all` and `launch` = the whole catalog (the
        scoring masks each user's own training items)."""
        if pool == "launch":
            if self.protocol != LAUNCH:
                raise ConfigError(f"pool 'launch' needs the {LAUNCH} protocol, got {self.protocol}")
            return np.arange(self.train.n_items)
        if pool == "new":
            if self.protocol != LEAVE_CATEGORY_OUT:
                raise ConfigError(f"pool 'new' needs the {LEAVE_CATEGORY_OUT} protocol, got {self.protocol}")
            return self.new_items
        if pool == "all":
            return np.arange(self.train.n_items)
        raise ConfigError(f"pool must be 'new', 'all' or 'both', got {pool!r}")


def make_split(data: Dataset, settings: SplitSettings) -> EvalSplit:
    """Build the split `settings` asks for (see `leave_category_out_split`, `leave_one_out_split`)."""
    if settings.protocol == LEAVE_ONE_OUT:
        return leave_one_out_split(data, min_history=settings.min_history)
    if settings.protocol == LAUNCH:
        return launch_split(data, settings)
    return leave_category_out_split(data, settings)


def resolve_categories(data: Dataset, level: int, names: tuple[str, ...]) -> tuple[str, ...]:
    """Map user-given names to level-`level` category paths: a full path, or a unique last-level name."""
    paths = sorted({c for c in data.category_at(level) if c})
    if not paths:
        raise ConfigError(f"the catalog has no categories at level {level} (deepest level: {data.category_depth()})")
    by_path = set(paths)
    by_leaf: dict[str, list[str]] = {}
    for p in paths:
        by_leaf.setdefault(p.split(CATEGORY_SEP)[-1].strip().lower(), []).append(p)
    out = []
    for name in names:
        name = name.strip()
        if name in by_path:
            out.append(name)
            continue
        hits = by_leaf.get(name.lower(), [])
        if len(hits) == 1:
            out.append(hits[0])
        elif len(hits) > 1:
            raise ConfigError(f"category {name!r} is ambiguous at level {level}: {hits[:5]}; give the full path")
        else:
            raise ConfigError(
                f"category {name!r} not found at level {level}; some that exist: {paths[:8]}"
                + (f" (+{len(paths) - 8} more)" if len(paths) > 8 else "")
            )
    return tuple(dict.fromkeys(out))


def heldout_and_validation(data: Dataset, settings: SplitSettings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The test categories (named, or a seeded `holdout_fraction` of the level's) and the seeded validation
    categories disjoint from them, at `settings.level`."""
    all_cats = sorted({c for c in data.category_at(settings.level) if c})
    if len(all_cats) < 2:
        raise ConfigError(f"level {settings.level} has {len(all_cats)} categories; holding categories out needs 2")
    rng = np.random.default_rng(settings.seed)
    if settings.categories:
        test_cats = resolve_categories(data, settings.level, settings.categories)
    else:
        n_test = max(1, round(settings.holdout_fraction * len(all_cats)))
        n_test = min(n_test, len(all_cats) - 1)
        test_cats = tuple(sorted(rng.choice(all_cats, size=n_test, replace=False).tolist()))
    rest = [c for c in all_cats if c not in set(test_cats)]
    frac = settings.validation_fraction
    n_val = len(test_cats) if frac is None else round(frac * len(all_cats))
    n_val = min(n_val, len(rest) - 1)  # leave at least one category to train on
    val_cats = tuple(sorted(rng.choice(rest, size=n_val, replace=False).tolist())) if n_val > 0 else ()
    return test_cats, val_cats


def leave_category_out_split(data: Dataset, settings: SplitSettings) -> EvalSplit:
    """Hold out whole categories: their items get no training interactions and become the `new` pool.

    Test users interacted with ≥1 held-out item and with ≥ `min_history` items elsewhere; their input
    history is those other interactions (in order), their targets the held-out items. Validation categories,
    disjoint from the test ones and seeded, get the same treatment with the test categories removed as well.
    """
    level_cat = data.category_at(settings.level)
    test_cats, val_cats = heldout_and_validation(data, settings)

    test = _category_task(data, level_cat, test_cats, excluded=(), settings=settings)
    validation = _category_task(data, level_cat, val_cats, excluded=test_cats, settings=settings) if val_cats else None
    if validation is not None and len(validation.test_users) == 0:
        validation = None
    return EvalSplit(
        protocol=LEAVE_CATEGORY_OUT,
        level=settings.level,
        train=test.train,
        test_users=test.test_users,
        targets=test.targets,
        new_items=test.new_items,
        heldout_categories=test_cats,
        item_category=level_cat,
        validation=validation,
        target_events=test.target_events,
    )


def _category_task(
    data: Dataset,
    level_cat: np.ndarray,
    heldout: tuple[str, ...],
    *,
    excluded: tuple[str, ...],
    settings: SplitSettings,
) -> EvalSplit:
    """One leave-category-out task; items of `excluded` categories are removed from training *and* targets."""
    is_new = np.isin(level_cat, np.asarray(heldout, dtype=object))
    is_excluded = np.isin(level_cat, np.asarray(excluded, dtype=object)) if excluded else np.zeros_like(is_new)
    inter = data.interactions
    item_of_row = inter["item"].to_numpy()
    row_new = is_new[item_of_row]
    row_train = ~row_new & ~is_excluded[item_of_row]
    train_inter = inter[row_train]
    histories = user_item_lists(train_inter, data.n_users)
    targets_all = user_item_lists(inter[row_new], data.n_users)
    users = [
        u
        for u in range(data.n_users)
        if len(targets_all[u]) > 0 and len(np.unique(histories[u])) >= settings.min_history
    ]
    return EvalSplit(
        protocol=LEAVE_CATEGORY_OUT,
        level=settings.level,
        train=data.with_interactions(train_inter),
        test_users=np.asarray(users, dtype=np.int64),
        targets=[np.unique(targets_all[u]) for u in users],
        new_items=np.flatnonzero(is_new).astype(np.int64),
        heldout_categories=heldout,
        item_category=level_cat,
        target_events=inter[row_new & np.isin(inter["user"].to_numpy(), users)].reset_index(drop=True),
    )


def window_rows(data: Dataset, test_fraction: float) -> np.ndarray:
    """Per interaction row, whether it lies in its user's test window: the last `test_fraction` of the user's
    interactions in time order (file order where times tie or are missing), rounded down, at least one."""
    inter = data.interactions
    order = np.lexsort((np.arange(len(inter)), inter["timestamp"].to_numpy(), inter["user"].to_numpy()))
    users = inter["user"].to_numpy()[order]
    counts = np.bincount(users, minlength=data.n_users)
    starts = np.cumsum(counts) - counts
    position = np.arange(len(order)) - starts[users]  # 0-based position within the user, in time order
    n_test = np.maximum(1, np.floor(test_fraction * counts + 1e-9).astype(np.int64))
    in_window = np.empty(len(inter), dtype=bool)
    in_window[order] = position >= counts[users] - n_test[users]
    return in_window


def launch_split(data: Dataset, settings: SplitSettings, *, heldout: tuple[str, ...] | None = None) -> EvalSplit:
    """Launch day: held-out categories launch into each user's test window, among the old items.

    Each user's last `test_fraction` of interactions (`window_rows`) is their test window. Training holds the
    earlier interactions outside the held-out categories, which have not launched yet. Targets are the items of
    the test window, old and new, except the user's own training items (the candidates are the whole catalog
    minus those). Test users need `min_history` distinct training items and one target.

    Args:
        heldout: the held-out category paths; default: named in `settings` or a seeded fraction at its level.

    Raises:
        ConfigError: no user qualifies (too few interactions per user for a test window and a history).
    """
    level_cat = data.category_at(settings.level)
    test_cats = heldout if heldout is not None else heldout_and_validation(data, settings)[0]
    is_new = np.isin(level_cat, np.asarray(test_cats, dtype=object))
    inter = data.interactions
    in_window = window_rows(data, settings.test_fraction)
    row_new = is_new[inter["item"].to_numpy()]
    train_inter = inter[~in_window & ~row_new]
    histories = user_item_lists(train_inter, data.n_users)
    window = user_item_lists(inter[in_window], data.n_users)
    users, targets = [], []
    for u in range(data.n_users):
        seen = np.unique(histories[u])
        if len(seen) < settings.min_history:
            continue
        found = np.setdiff1d(window[u], seen)
        if len(found):
            users.append(u)
            targets.append(found.astype(np.int64))
    if not users:
        counts = np.bincount(inter["user"].to_numpy(), minlength=data.n_users)
        raise ConfigError(
            f"the launch protocol found no test user: none has min_history={settings.min_history} distinct "
            f"training items before a test window (the last {settings.test_fraction:g} of their interactions, "
            f"at least one) holding an item outside those; users have a median of {np.median(counts):g} "
            "interactions. Lower --min-history or --test-fraction, or use a log with longer histories"
        )
    return EvalSplit(
        protocol=LAUNCH,
        level=settings.level,
        train=data.with_interactions(train_inter),
        test_users=np.asarray(users, dtype=np.int64),
        targets=targets,
        new_items=np.flatnonzero(is_new).astype(np.int64),
        heldout_categories=tuple(test_cats),
        item_category=level_cat,
    )


def leave_one_out_split(data: Dataset, *, min_history: int = 3) -> EvalSplit:
    """Sequential leave-one-out: each user's last item is the test target, the second-last the validation one.

    Users need ≥ `min_history` interactions before the test item. Training data for the test task is every
    interaction but each user's last; for the validation task, every interaction but each user's last two.
    """
    inter = data.interactions
    users_col = inter["user"].to_numpy()
    # position counted from the end within each user (interactions are sorted by user, then time)
    pos_from_end = inter.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    counts = np.bincount(users_col, minlength=data.n_users)

    def task(drop_last: int) -> tuple[Dataset, np.ndarray, list[np.ndarray]]:
        eligible = counts >= min_history + drop_last
        keep = pos_from_end >= drop_last
        target_rows = (pos_from_end == drop_last - 1) & eligible[users_col]
        target_df = inter[target_rows]
        return (
            data.with_interactions(inter[keep]),
            target_df["user"].to_numpy().astype(np.int64),
            [np.asarray([i], dtype=np.int64) for i in target_df["item"].to_numpy()],
        )

    train, test_users, targets = task(1)
    val_train, val_users, val_targets = task(2)
    empty = np.empty(0, dtype=np.int64)
    validation = EvalSplit(LEAVE_ONE_OUT, None, val_train, val_users, val_targets, empty)
    return EvalSplit(LEAVE_ONE_OUT, None, train, test_users, targets, empty, validation=validation)


def default_validation_level(data: Dataset) -> int:
    """The top level when it has at least 4 categories, else the second (where there is one)."""
    if len({c for c in data.category_at(1) if c}) >= 4 or data.category_depth() < 2:
        return 1
    return 2


def validation_category_splits(
    data: Dataset,
    *,
    level: int | None = None,
    holdout_fraction: float = 0.2,
    min_history: int = 3,
    min_users: int = 20,
    n_folds: int = 1,
    seed: int = 0,
) -> tuple[list[EvalSplit], int]:
    """Leave-category-out tasks carved from `data` itself, for tuning and early stopping inside `fit`.

    Fold f holds out a draw (seed + f) of `holdout_fraction` of the level's categories that have interactions
    in `data`; in an evaluation the test categories have none, so they are never drawn. Folds with fewer than
    `min_users` test users, and repeated draws, are left out.

    Returns:
        the folds (possibly none) and the category level used.
    """
    level = default_validation_level(data) if level is None else level
    counts = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items)
    cats = data.category_at(level)
    active = sorted({c for c, n in zip(cats, counts, strict=True) if c and n > 0})
    if len(active) < 3:
        return [], level
    n = min(max(2, round(holdout_fraction * len(active))), len(active) - 1)
    splits, seen = [], set()
    for fold in range(n_folds):
        chosen = tuple(sorted(np.random.default_rng(seed + fold).choice(active, size=n, replace=False).tolist()))
        if chosen in seen:
            continue
        seen.add(chosen)
        split = leave_category_out_split(
            data, SplitSettings(level=level, categories=chosen, min_history=min_history, validation_fraction=0.0)
        )
        if len(split.test_users) >= max(1, min_users):
            splits.append(split)
    return splits, level


class TuningFoldOptions(Protocol):
    """The fields of a tuner's settings that carve its validation folds (`zero-shot`, `ensemble`)."""

    level: int | None
    holdout_fraction: float
    min_history: int
    min_validation_users: int
    n_folds: int
    seed: int


def tuning_folds(data: Dataset, options: TuningFoldOptions) -> tuple[list[EvalSplit], int]:
    """`validation_category_splits` of `data` at `options.level`; where that level gives no fold (too few
    categories or users there), at the default level instead, so a tuner is not left untuned by the level an
    evaluation happens to hold out.

    Returns:
        the folds (possibly none) and the category level they hold out.
    """
    kwargs = {
        "holdout_fraction": options.holdout_fraction,
        "min_history": options.min_history,
        "min_users": options.min_validation_users,
        "n_folds": options.n_folds,
        "seed": options.seed,
    }
    splits, level = validation_category_splits(data, level=options.level, **kwargs)
    if not splits and options.level is not None and options.level != default_validation_level(data):
        splits, level = validation_category_splits(data, level=None, **kwargs)
    return splits, level


class ValidationOptions(Protocol):
    """The fields a trainer's settings carry to carve its early-stopping fold (heads, contrastive, cross-encoder)."""

    level: int | None
    validation_fraction: float
    min_history: int
    min_validation_users: int
    seed: int


def first_validation_split(data: Dataset, options: ValidationOptions) -> EvalSplit | None:
    """The first seeded validation fold of `data` (see `validation_category_splits`), or None with too few users."""
    splits, _ = validation_category_splits(
        data,
        level=options.level,
        holdout_fraction=options.validation_fraction,
        min_history=options.min_history,
        min_users=options.min_validation_users,
        seed=options.seed,
    )
    return splits[0] if splits else None
