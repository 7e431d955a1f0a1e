"""Tiny result documents of each kind, shaped as the commands write them (no evaluation runs here)."""

from __future__ import annotations

import base64
import re
from typing import Any

CATEGORIES = ["Outdoor > Tents", "Kitchen > Knives", "Garden > Seeds"]
MODELS = {"random": 0.1, "tfidf": 0.4, "zero-shot": 0.5}


def _metrics(base: float, *, categories: bool = True) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "ndcg@10": base,
        "ndcg@10_ci": [base - 0.05, base + 0.05],
        "ndcg@50": base + 0.1,
        "ndcg@50_ci": [base + 0.05, base + 0.15],
        "recall@10": base * 1.5,
        "mrr": base / 2,
        "n_users": 30,
    }
    if categories:
        metrics["per_category"] = {c: {"ndcg@10": base + 0.02 * i, "n_users": 10} for i, c in enumerate(CATEGORIES)}
    return metrics


def evaluation_doc(shift: float = 0.0, seed: int = 0, pools: tuple[str, ...] = ("new", "all")) -> dict[str, Any]:
    return {
        "dataset": "tiny-shop",
        "dataset_fingerprint": {
            "name": "tiny-shop",
            "n_items": 80,
            "n_users": 60,
            "items_sha256": "a" * 64,
            "users_sha256": "b" * 64,
        },
        "protocol": {
            "name": "leave-category-out",
            "level": 2,
            "heldout_categories": CATEGORIES,
            "validation_categories": [],
            "n_test_users": 30,
            "n_new_items": 30,
            "min_history": 3,
            "seed": seed,
        },
        "results": {m: {p: _metrics(v + shift) for p in pools} for m, v in MODELS.items()},
        "models": {
            m: {"config": {"model": m, "settings": {"seed": 0}}, "fit_seconds": 0.1, "score_seconds": 0.1}
            for m in MODELS
        },
        "encoder": "hashing",
        "zsrec_version": "0.0.0",
        "created": "2026-12-03T12:00:00+00:00",
        "command": ["zsrec", "evaluate", "tiny-shop", "--level", "2"],
        "config": {"dataset": "tiny-shop", "level": 2, "models": "random,tfidf,zero-shot"},
    }


def draws_doc() -> dict[str, Any]:
    draws = [evaluation_doc(shift, seed, pools=("new",)) for seed, shift in enumerate((0.0, 0.05, -0.03))]
    ratios = {m: [(v + s) / (0.4 + s) for s in (0.0, 0.05, -0.03)] for m, v in MODELS.items()}
    stats = {"median": 0.4, "q1": 0.38, "q3": 0.42, "min": 0.37, "max": 0.45}
    return {
        "dataset": "tiny-shop",
        "protocol": {
            "name": "leave-category-out",
            "level": 2,
            "holdout_fraction": 0.2,
            "min_history": 3,
            "seeds": [0, 1, 2],
        },
        "n_draws": 3,
        "reveal_values": [],
        "draws": draws,
        "summary": {m: {"new": {"ndcg@10": stats}} for m in MODELS},
        "ratio_to_strongest_baseline": {
            "pool": "new",
            "metric": "ndcg@10",
            "baselines": ["tfidf"],
            "strongest": ["tfidf"] * 3,
            "per_draw": ratios,
            "summary": {m: stats for m in MODELS},
        },
        "encoder": "hashing",
        "zsrec_version": "0.0.0",
        "created": "2026-12-03T12:00:00+00:00",
        "command": ["zsrec", "evaluate", "tiny-shop", "--draws", "3"],
    }


def robustness_doc() -> dict[str, Any]:
    doc = evaluation_doc()
    attacks = ["typos", "stuffing"]
    doc["settings"] = {"attacks": attacks, "k": 10, "n_bootstrap": 20, "seed": 0}
    doc["stuffed_items"] = ["i1", "i2"]
    doc["results"] = {
        m: {
            "clean": {"ndcg@10": v, "ndcg@10_ci": [v - 0.05, v + 0.05], "n_users": 30},
            "attacks": {
                a: {"ndcg@10": v - 0.01, "ndcg@10_drop": 0.01, "ndcg@10_drop_ci": [0.0, 0.02]} for a in attacks
            },
        }
        for m, v in MODELS.items()
    }
    return doc


def scenarios_doc() -> dict[str, Any]:
    bins = [
        {
            "low": i / 10,
            "high": (i + 1) / 10,
            "count": 100 // (i + 1),
            "mean_predicted": i / 10 + 0.05,
            "observed_rate": i / 10 + 0.04,
        }
        for i in range(5)
    ]
    forecast = {"spearman": 0.8, "predicted": [10.0, 40.0, 25.0], "actual": [12.0, 35.0, 30.0]}
    adoption = {"dataset": "tiny-shop", "level": 2, "reliability": bins, "platt": {"ece": 0.01, "forecast": forecast}}
    return {
        "adoption": [adoption],
        "forecast_time": {
            "level": 3,
            "cutoff_week": 13,
            "categories": ["a", "b", "c"],
            "zero-shot": {"spearman": 0.5},
            "predicted": [1.0, 5.0, 3.0],
            "actual": [2.0, 4.0, 3.0],
        },
        "date": "2026-12-03 12:00 UTC",
        "machine": "x86_64, 2 CPUs",
        "seconds": 60.0,
    }


def warmup_doc() -> dict[str, Any]:
    """The warm-up form with two reveal shares (what `evaluate --reveal 0.01,0.05` and the demo write)."""
    docs = {}
    for value, shift in (("0.01", 0.1), ("0.05", 0.2)):
        doc = evaluation_doc(shift, pools=("new",))
        doc["protocol"]["reveal"] = {"value": value, "share": float(value), "n_revealed_users": 3}
        docs[value] = doc
    return {"dataset": "tiny-shop", "reveal_values": list(docs), "reveal": docs, "encoder": "hashing"}


# -- reading a report back ------------------------------------------------------------------------------
IMG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in IMG.findall(page)]


def section_titles(page: str) -> list[str]:
    return re.findall(r"<h2>([^<]+)</h2>", page)


def assert_self_contained(page: str) -> None:
    """No src or href pointing anywhere but into the page itself, and no script."""
    assert "<script" not in page.lower()
    for attribute in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attribute.startswith("data:image/png;base64,") or attribute.startswith("#"), attribute[:60]
    assert "http://" not in page and "https://" not in page
