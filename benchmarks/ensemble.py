"""Benchmark: the tuned ensemble against each of its members on the test categories.

    .venv/bin/python benchmarks/ensemble.py            # 19 min on 2 cores (measured 2026-11-28, light load)

On Amazon Scientific (level 1, the four held-out categories of benchmarks/new_category.py) and Complete
Journey (level 2, the demo's reduction and held-out categories), fits `ensemble` with its default members on the
split's training data (weights tuned on validation categories carved from that data, never the test ones),
then scores the ensemble and each member (the members the ensemble fitted on the same data) on the new pool:
NDCG@10 with a bootstrap CI, and the paired bootstrap CI of (ensemble − best member) over users. Writes the
tables into docs/benchmarks.md (section `ensemble`) and the raw figures into docs/benchmarks/ensemble.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from common import write_section  # noqa: E402
from robustness import AMAZON, SCIENTIFIC_CATEGORIES, machine_line  # noqa: E402

from zsrec.data import load_dataset  # noqa: E402
from zsrec.data.dataset import Dataset  # noqa: E402
from zsrec.data.splits import SplitSettings, make_split  # noqa: E402
from zsrec.demo import DemoSettings, keep_popular_items  # noqa: E402
from zsrec.evaluation.evaluate import target_ranks  # noqa: E402
from zsrec.evaluation.metrics import bootstrap_ci, user_metrics  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.models.embedding_source import EmbeddingSource  # noqa: E402
from zsrec.models.ensemble import DEFAULT_MEMBERS, EnsembleSettings  # noqa: E402
from zsrec.models.registry import ensemble_model  # noqa: E402
from zsrec.reporting import json_ready  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python benchmarks/ensemble.py"


def per_user_ndcg(model, split) -> np.ndarray:
    ranks, _ = target_ranks(model, split, "new", seed=0)
    return user_metrics(ranks, len(split.new_items), (10,))["ndcg@10"]


def run(data: Dataset, settings: SplitSettings, members: tuple[str, ...], embeddings: EmbeddingSource) -> dict:
    split = make_split(data, settings)
    start = time.perf_counter()
    # validation folds at the held-out level, as `zsrec evaluate --models ensemble` does (ModelContext.validation_level)
    ensemble = EnsembleSettings(members=members, level=settings.level)
    model = ensemble_model(ensemble, embeddings=embeddings).fit(split.train)
    fit_seconds = time.perf_counter() - start
    ndcg = {"ensemble": per_user_ndcg(model, split)}
    for name, member in zip(members, model.members_, strict=True):
        ndcg[name] = per_user_ndcg(member, split)
    rows = {name: {"ndcg@10": float(v.mean()), "ci": list(bootstrap_ci(v, seed=0))} for name, v in ndcg.items()}
    best = max(members, key=lambda m: rows[m]["ndcg@10"])
    diff = ndcg["ensemble"] - ndcg[best]
    return {
        "dataset": data.name,
        "members": list(members),
        "heldout_categories": list(split.heldout_categories),
        "n_test_users": len(split.test_users),
        "n_new_items": len(split.new_items),
        "fit_seconds": fit_seconds,
        "tuning": model.tuning_,
        "results": rows,
        "best_member": best,
        "ensemble_minus_best": float(diff.mean()),
        "ensemble_minus_best_ci": list(bootstrap_ci(diff, seed=0)),
    }


def fold_text(categories: list[str], shown: int = 4) -> str:
    """A validation fold's held-out categories, the first `shown` by name (level-2 folds hold dozens)."""
    more = len(categories) - shown
    return "/".join(categories[:shown]) + (f" and {more} more" if more > 0 else "")


def table(doc: dict) -> str:
    t = doc["tuning"]
    weights = ", ".join(f"{m} {w:g}" for m, w in zip(doc["members"], t["weights"], strict=True))
    folds = "; ".join(fold_text(f["categories"]) for f in t.get("validation_folds", []))
    searched = t.get("searches", {}).get(t["fusion"], {}).get("weights", t["weights"])
    searched_text = ", ".join(f"{m} {w:g}" for m, w in zip(doc["members"], searched, strict=True))
    gate = t.get("gate") or {}
    if gate.get("ci"):
        lo, hi = gate["ci"]
        verdict = "kept" if gate["kept"] else "not kept: the ensemble is the best single member alone"
        gate_text = (
            f" Gate: the same search run on one fold and scored on the other gains {gate['gain']:+.4f} NDCG@10 "
            f"over the best single member there (paired 95% CI [{lo:+.4f}, {hi:+.4f}]), so the fusion is {verdict}."
        )
    else:
        gate_text = ""
    lines = [
        f"`{doc['dataset']}` — held out: {'; '.join(doc['heldout_categories'])}; {doc['n_test_users']:,} test users, "
        f"{doc['n_new_items']:,} new items. Searched fusion **{t['fusion']}**, weights {searched_text} (validation "
        f"NDCG@10 {t.get('validation_ndcg@10', float('nan')):.4f} on folds {folds}).{gate_text} "
        f"Served weights: {weights}. Fit {doc['fit_seconds']:.0f} s.",
        "",
        "| model | NDCG@10 (new pool) | 95% CI |",
        "|---|---|---|",
    ]
    for name, r in doc["results"].items():
        label = f"**{name}**" if name == "ensemble" else name
        lines.append(f"| {label} | {r['ndcg@10']:.4f} | [{r['ci'][0]:.4f}, {r['ci'][1]:.4f}] |")
    lo, hi = doc["ensemble_minus_best_ci"]
    verdict = "better" if lo > 0 else ("a tie within the CI" if hi >= 0 else "worse")
    lines += [
        "",
        f"Ensemble − best member ({doc['best_member']}): {doc['ensemble_minus_best']:+.4f}, paired 95% CI "
        f"[{lo:+.4f}, {hi:+.4f}]: {verdict}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-completejourney", action="store_true", help="only the Amazon Scientific run")
    parser.add_argument("--members", default=",".join(DEFAULT_MEMBERS), help="members (default: %(default)s)")
    args = parser.parse_args(argv)
    if not (AMAZON / "Scientific.item.json").exists():
        print(f"error: {AMAZON} not found; the benchmark reads ../shared/data/amazon-scientific", file=sys.stderr)
        return 2
    started = time.perf_counter()
    members = tuple(m for m in args.members.split(",") if m)
    embeddings = EmbeddingSource("minilm")
    docs = {}
    amazon = load_dataset(f"amazon-lcrec:{AMAZON}")
    sci = SplitSettings(level=1, categories=SCIENTIFIC_CATEGORIES, min_history=3, seed=0)
    docs["scientific"] = run(amazon, sci, members, embeddings)
    print(f"scientific done ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
    if not args.skip_completejourney:
        demo = DemoSettings()
        journey = keep_popular_items(load_dataset("completejourney"), demo.min_households)
        cj = SplitSettings(level=2, categories=demo.categories, min_history=3, seed=0)
        docs["completejourney"] = run(journey, cj, members, embeddings)
        print(f"complete journey done ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
    minutes = (time.perf_counter() - started) / 60
    atomic_write_text(REPO / "docs" / "benchmarks" / "ensemble.json", json.dumps(json_ready(docs), indent=1))
    md = [
        "## Ensembles (`benchmarks/ensemble.py`)",
        "",
        f"Command: `{COMMAND}` (library: `zsrec train DATASET --model ensemble --members a,b,c`). "
        f"{machine_line(minutes)}",
        "Members are fitted on the split's training data; the fusion and its weights are searched on validation "
        "categories carved from that data (coordinate ascent over a small grid, from the best single member). "
        "The test categories are never seen while tuning.",
    ]
    titles = {"scientific": "Amazon Scientific, level 1", "completejourney": "Complete Journey, level 2"}
    for name, doc in docs.items():
        md += ["", f"### {titles[name]}", table(doc)]
    write_section("ensemble", "\n".join(md))
    print(f"wrote docs/benchmarks.md (ensemble) in {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
