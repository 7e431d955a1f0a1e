"""The warm-up protocol's data step: the earliest adopters of the new categories are revealed, nested by share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zsrec.data.cleaning import TIMESTAMP_SOURCE_ATTR
from zsrec.data.dataset import Dataset
from zsrec.data.loaders import load_dataset
from zsrec.data.reveal import (
    adopter_order,
    reveal_adopters,
    reveal_schedule,
    revealed_count,
    timestamps_are_times,
)
from zsrec.data.splits import SplitSettings, make_split
from zsrec.errors import ConfigError
from zsrec.models.baselines import RandomRecommender

N_USERS = 10


def adoption_shop() -> Dataset:
    """Ten users with three warm items each; user u buys two new items at times 1000 - 10u and 1001 - 10u, so
    user 9 adopts first and user 0 last."""
    items = pd.DataFrame(
        {
            "item_id": [f"w{j}" for j in range(4)] + [f"n{j}" for j in range(3)],
            "title": [f"warm thing {j}" for j in range(4)] + [f"new thing {j}" for j in range(3)],
            "category": ["Warm"] * 4 + ["New"] * 3,
            "description": "",
            "brand": "",
        }
    )
    rows = []
    for u in range(N_USERS):
        rows += [(u, j, float(10 * u + j)) for j in range(3)]
        rows += [(u, 4 + u % 3, 1000.0 - 10 * u), (u, 4 + (u + 1) % 3, 1001.0 - 10 * u)]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).sort_values(["user", "timestamp"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(N_USERS)], "profile": ""})
    return Dataset("adoption", items, users, inter.reset_index(drop=True))


SPLIT = SplitSettings(level=1, categories=("New",), validation_fraction=0.0)


@pytest.fixture(scope="module")
def split():
    return make_split(adoption_shop(), SPLIT)


def test_the_split_carries_its_test_users_held_out_events(split) -> None:
    assert len(split.test_users) == N_USERS
    assert split.target_events is not None
    assert set(split.target_events["user"]) == set(range(N_USERS))
    assert set(split.target_events["item"]) <= set(split.new_items.tolist())
    assert len(split.target_events) == 2 * N_USERS


def test_revealed_count_is_a_ceiling_robust_to_float_noise() -> None:
    assert revealed_count(0.1, 30) == 3  # 0.1 * 30 is 3.0000000000000004 in floats
    assert revealed_count(0.01, 30) == 1
    assert revealed_count(0.0, 30) == 0
    assert revealed_count(0.5, 5) == 3


def test_reveal_picks_the_earliest_adopters_by_time(split) -> None:
    remaining, events = reveal_adopters(split, 0.3, seed=0)
    assert sorted(events["user"].unique().tolist()) == [7, 8, 9]
    assert list(events.columns) == ["user", "item", "timestamp"]
    assert len(events) == 6  # all of their held-out interactions
    assert np.all(np.diff(events["timestamp"].to_numpy()) >= 0)  # in time order
    assert events["timestamp"].iloc[0] == 1000.0 - 90


def test_revealed_users_leave_the_test_set_with_their_targets(split) -> None:
    remaining, events = reveal_adopters(split, 0.3, seed=0)
    assert remaining.test_users.tolist() == list(range(7))
    for user, targets in zip(remaining.test_users, remaining.targets, strict=True):
        before = split.targets[split.test_users.tolist().index(user)]
        assert targets.tolist() == before.tolist()
    assert set(remaining.target_events["user"]) == set(range(7))
    assert remaining.train is split.train and remaining.new_items is split.new_items


def test_share_zero_changes_nothing(split) -> None:
    remaining, events = reveal_adopters(split, 0.0, seed=0)
    assert events.empty and list(events.columns) == ["user", "item", "timestamp"]
    assert remaining.test_users.tolist() == split.test_users.tolist()
    assert [t.tolist() for t in remaining.targets] == [t.tolist() for t in split.targets]


def test_shares_are_nested_and_the_schedule_adds_only_new_events(split) -> None:
    steps = reveal_schedule(split, [0.5, 0.0, 0.2], seed=3)
    assert [s.share for s in steps] == [0.0, 0.2, 0.5]
    users = [set(s.revealed["user"]) for s in steps]
    assert users[0] == set() and users[0] <= users[1] <= users[2]
    assert [len(u) for u in users] == [0, 2, 5]
    added = pd.concat([s.new_events for s in steps])
    assert len(added) == len(steps[-1].revealed)
    assert set(steps[2].new_events["user"]) == users[2] - users[1]


def test_without_times_the_order_is_seeded_random(split) -> None:
    events = split.target_events.copy()
    events.attrs[TIMESTAMP_SOURCE_ATTR] = "file order"
    untimed = type(split)(**{**split.__dict__, "target_events": events})
    assert not timestamps_are_times(events) and timestamps_are_times(split.target_events)
    first = adopter_order(untimed, seed=0)
    assert adopter_order(untimed, seed=0).tolist() == first.tolist()
    orders = {tuple(adopter_order(untimed, seed=s).tolist()) for s in range(5)}
    assert len(orders) > 1  # the seed decides, not the file positions
    assert adopter_order(split, seed=0).tolist() == list(range(N_USERS - 1, -1, -1))  # with times: by time


def test_a_source_without_timestamps_is_detected(tmp_path: Path) -> None:
    data = adoption_shop()
    data.items.to_csv(tmp_path / "items.csv", index=False)
    inter = data.interactions.assign(
        user_id=data.users["user_id"].to_numpy()[data.interactions["user"]],
        item_id=data.items["item_id"].to_numpy()[data.interactions["item"]],
    )
    inter[["user_id", "item_id"]].to_csv(tmp_path / "interactions.csv", index=False)
    untimed = make_split(load_dataset(str(tmp_path)), SPLIT)
    assert not timestamps_are_times(untimed.target_events)
    inter[["user_id", "item_id", "timestamp"]].to_csv(tmp_path / "interactions.csv", index=False)
    timed = make_split(load_dataset(str(tmp_path)), SPLIT)
    assert timestamps_are_times(timed.target_events)


def test_bad_shares_and_protocols_are_refused(split) -> None:
    for share in (1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="reveal share"):
            reveal_adopters(split, share)
    loo = make_split(adoption_shop(), SplitSettings(protocol="leave-one-out"))
    with pytest.raises(ConfigError, match="leave-category-out"):
        reveal_adopters(loo, 0.1)


def test_partial_fit_default_extends_histories_in_order_without_repeats(split) -> None:
    model = RandomRecommender().fit(split.train)  # keeps the base class's partial_fit
    before = model.histories_[0].tolist()
    events = pd.DataFrame({"user": [0, 0, 0, 1], "item": [5, before[0], 4, 6], "timestamp": [1.0, 2.0, 3.0, 4.0]})
    assert model.partial_fit(events) is model
    assert model.histories_[0].tolist() == [*before, 5, 4]
    assert model.histories_[1].tolist()[-1] == 6
