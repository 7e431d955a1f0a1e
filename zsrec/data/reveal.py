"""The warm-up protocol's data step: reveal the first adopters' interactions with the new categories.

A new category is not cold for long: once its first buyers have bought, a shop knows their purchases. To measure
how quickly a model catches up, the earliest adopters among a leave-category-out split's test users (by the time of
their first held-out interaction) have all their held-out interactions revealed, and leave the test set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from zsrec.data.cleaning import TIMESTAMP_SOURCE_ATTR
from zsrec.data.splits import LEAVE_CATEGORY_OUT, EvalSplit
from zsrec.errors import ConfigError

EVENT_COLUMNS = ("user", "item", "timestamp")


def timestamps_are_times(interactions: pd.DataFrame) -> bool:
    """Whether `timestamp` holds times from the data. Cleaning marks a log whose source had no time (the column is
    then the file position, meaningless across users); a log without that mark is taken as timed."""
    return interactions.attrs.get(TIMESTAMP_SOURCE_ATTR, "data") != "file order"


def revealed_count(share: float, n_users: int) -> int:
    """ceil(share × n_users), robust to float noise (0.1 × 30 is 3.0000000000000004, which must give 3)."""
    return math.ceil(round(share * n_users, 9))


def adopter_order(split: EvalSplit, *, seed: int = 0) -> np.ndarray:
    """Positions in `split.test_users`, earliest adopter first: by the time of each user's first held-out
    interaction, ties in a seeded random order; the whole order is seeded random when the log has no times."""
    events = _target_events(split)
    tiebreak = np.random.default_rng(seed).random(len(split.test_users))
    if not timestamps_are_times(events):
        return np.argsort(tiebreak, kind="stable")
    first = events.groupby("user", sort=False)["timestamp"].min()
    first_time = first.reindex(split.test_users).to_numpy(dtype=np.float64)
    # a user whose events are missing (a split built by hand) adopts last
    first_time = np.nan_to_num(first_time, nan=np.inf)
    return np.lexsort((tiebreak, first_time))  # last key sorts first


def reveal_adopters(split: EvalSplit, share: float, *, seed: int = 0) -> tuple[EvalSplit, pd.DataFrame]:
    """Reveal the first ceil(share × n_test_users) adopters (see `adopter_order`; share 0 reveals nobody).

    Returns:
        the split without those users (their targets and events gone with them; training data and validation
        unchanged), and their held-out interactions: columns `user`, `item`, `timestamp`, in time order (in
        adopter order, then file order, when the log has no times).

    Shares are nested for one split and seed: the users revealed at 0.01 are among those revealed at 0.02.
    """
    if not 0.0 <= share < 1.0:
        raise ConfigError(f"reveal share must be in [0, 1), got {share}")
    events = _target_events(split)
    order = adopter_order(split, seed=seed)
    chosen = order[: revealed_count(share, len(split.test_users))]
    keep = np.ones(len(split.test_users), dtype=bool)
    keep[chosen] = False
    rank = np.full(split.train.n_users, len(order), dtype=np.int64)
    rank[split.test_users[order]] = np.arange(len(order))
    revealed_rows = np.isin(events["user"].to_numpy(), split.test_users[chosen])
    revealed = events.loc[revealed_rows, list(EVENT_COLUMNS)]
    user_rank, time = rank[revealed["user"].to_numpy()], revealed["timestamp"].to_numpy()
    keys = (user_rank, time) if timestamps_are_times(events) else (time, user_rank)
    revealed = revealed.iloc[np.lexsort(keys)].reset_index(drop=True)
    remaining = replace(
        split,
        test_users=split.test_users[keep],
        targets=[t for t, k in zip(split.targets, keep, strict=True) if k],
        target_events=events[~revealed_rows].reset_index(drop=True),
    )
    return remaining, revealed


@dataclass(frozen=True)
class RevealStep:
    """One share of a warm-up run: what is evaluated, everything revealed so far, and what is new since the
    previous (smaller) share, which is what a fitted model folds in with `partial_fit`."""

    share: float
    split: EvalSplit
    revealed: pd.DataFrame
    new_events: pd.DataFrame

    @property
    def n_revealed_users(self) -> int:
        return int(self.revealed["user"].nunique())


def reveal_schedule(split: EvalSplit, shares: Sequence[float], *, seed: int = 0) -> list[RevealStep]:
    """`reveal_adopters` at each share, in ascending order of share, with the events each step adds."""
    steps: list[RevealStep] = []
    before: set[int] = set()
    for share in sorted(shares):
        remaining, revealed = reveal_adopters(split, share, seed=seed)
        is_new = ~revealed["user"].isin(before).to_numpy()
        steps.append(RevealStep(share, remaining, revealed, revealed[is_new].reset_index(drop=True)))
        before = set(revealed["user"].tolist())
    return steps


def _target_events(split: EvalSplit) -> pd.DataFrame:
    if split.protocol != LEAVE_CATEGORY_OUT:
        raise ConfigError(f"revealing adopters needs the {LEAVE_CATEGORY_OUT} protocol, got {split.protocol}")
    if split.target_events is None:
        raise ConfigError("the split carries no held-out interactions to reveal; build it with make_split")
    return split.target_events
