"""Benchmark: `launch-ranker` on new categories, at launch and as the first purchases arrive.

    make bench               # = .venv/bin/python benchmarks/launch.py  (all stages, then the docs section)
    .venv/bin/python benchmarks/launch.py --stage launch-amazon1 [--stage ...]   # some stages only
    .venv/bin/python benchmarks/launch.py --render-only                          # docs from saved JSON

Stages (each writes docs/benchmarks/launch/STAGE.json; --render-only rebuilds the section from them):
- launch-amazon1, launch-amazon2, launch-cj2: 10 seeded 20% draws (Amazon Scientific at levels 1 and 2,
  Complete Journey's demo reduction at level 2), new pool, NDCG@10: tfidf, bm25, zero-shot and launch-ranker,
  with each model's ratio to the strongest baseline (tfidf, bm25) of each draw; lightfm runs on the named
  splits only (a fit takes minutes here);
- warmup-amazon1, warmup-cj2: 3 draws with 0, 1, 2 and 10% of each draw's adopters revealed (earliest
  first), against popularity, als, tfidf and bm25 fed the same purchases (lightfm refits from scratch on every
  share, too slow here, and is left out of the warm-up);
- named: the named splits of docs/benchmarks.md (Amazon Scientific's four level-1 categories, the demo's five
  Complete Journey level-2 categories) with 95% CIs;
- speed: fitting launch-ranker on Complete Journey (demo reduction, every interaction), folding 1,000 new events
  into it, and a save/load round trip.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from common import REPO, figure_markdown, machine_line, write_section  # noqa: E402

from zsrec.data import load_dataset  # noqa: E402
from zsrec.data.splits import SplitSettings, make_split  # noqa: E402
from zsrec.demo import DEMO_CATEGORIES, keep_popular_items  # noqa: E402
from zsrec.evaluation.draws import run_draws  # noqa: E402
from zsrec.evaluation.evaluate import EvalSettings  # noqa: E402
from zsrec.evaluation.run import run_evaluation  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.models.embedding_source import EmbeddingSource  # noqa: E402
from zsrec.models.registry import ModelContext, build_model, load_model  # noqa: E402
from zsrec.reports.sections import draws_figures, warmup_median_figure  # noqa: E402

AMAZON = REPO.parent / "shared" / "data" / "amazon-scientific"
OUT = REPO / "docs" / "benchmarks" / "launch"
SCIENTIFIC_CATEGORIES = (
    "Hydraulics, Pneumatics & Plumbing",
    "Lab & Scientific Products",
    "Occupational Health & Safety Products",
    "Professional Dental Supplies",
)
# lightfm (about 1.5 min a fit here) runs on the named splits only: ten draws of it per shop do not fit a
# session of this 2-core machine
LAUNCH_MODELS = ("tfidf", "bm25", "zero-shot", "launch-ranker")
NAMED_MODELS = ("tfidf", "bm25", "lightfm", "zero-shot", "launch-ranker")
WARMUP_MODELS = ("popularity", "als", "tfidf", "bm25", "zero-shot", "launch-ranker")
SHARES = ("0", "0.01", "0.02", "0.1")
LAUNCH_DRAWS, WARMUP_DRAWS = 10, 3  # the warm-up refits ALS at every share: three draws fit a session here
DRAW_EVAL = EvalSettings(ks=(10,), pools=("new",), n_bootstrap=0)
NAMED_EVAL = EvalSettings(ks=(10,), pools=("new",), n_bootstrap=1000)
NAMED_SPLITS = {  # the named splits of docs/benchmarks.md, by the shop name `shop` takes
    "amazon": SplitSettings(level=1, categories=SCIENTIFIC_CATEGORIES),
    "completejourney": SplitSettings(level=2, categories=DEMO_CATEGORIES),
}
STAGES = ("launch-amazon1", "launch-amazon2", "launch-cj2", "warmup-amazon1", "warmup-cj2", "named", "speed")
# lightfm on Complete Journey's ten draws, in two halves that can run side by side (a fit takes minutes)
LIGHTFM_STAGES = ("lightfm-cj2-0", "lightfm-cj2-5")


def shop(name: str):
    if name == "amazon":
        if not (AMAZON / "Scientific.item.json").exists():
            sys.exit(f"{AMAZON} not found: this benchmark reads ../shared/data/amazon-scientific")
        return load_dataset(f"amazon-lcrec:{AMAZON}")
    return keep_popular_items(load_dataset("completejourney"), 30)  # the demo's reduction


def run_stage(stage: str, embeddings: EmbeddingSource) -> dict:
    if stage in LIGHTFM_STAGES:
        first = int(stage.rsplit("-", 1)[1])
        split = SplitSettings(level=2, holdout_fraction=0.2, seed=first)
        return run_draws(shop("cj"), ("tfidf", "lightfm"), split, DRAW_EVAL, draws=5, embeddings=embeddings)
    if stage.startswith("launch-") or stage.startswith("warmup-"):
        kind, where = stage.split("-")
        name, level = where[:-1], int(where[-1])
        name = "amazon" if name == "amazon" else "completejourney"
        warm = kind == "warmup"
        return run_draws(
            shop(name),
            WARMUP_MODELS if warm else LAUNCH_MODELS,
            SplitSettings(level=level, holdout_fraction=0.2, seed=0),
            DRAW_EVAL,
            draws=WARMUP_DRAWS if warm else LAUNCH_DRAWS,
            reveal=SHARES if warm else (),
            embeddings=embeddings,
        )
    if stage == "named":
        return {
            name: run_evaluation(shop(name), NAMED_MODELS, split, NAMED_EVAL, embeddings=embeddings)
            for name, split in NAMED_SPLITS.items()
        }
    return speed(embeddings)


def speed(embeddings: EmbeddingSource) -> dict:
    """Fit time on every interaction of Complete Journey's demo reduction; 1,000 events folded into a model
    fitted on the named split (its test users' first purchases of the new items); save and load."""
    data = shop("cj")
    ctx = ModelContext(embeddings=embeddings, validation_level=2)
    start = time.perf_counter()
    build_model("launch-ranker", ctx).fit(data)
    fit_all = time.perf_counter() - start
    split = make_split(data, SplitSettings(level=2, categories=DEMO_CATEGORIES))
    model = build_model("launch-ranker", ctx).fit(split.train)
    events = pd.DataFrame(
        [(int(u), int(i)) for u, t in zip(split.test_users, split.targets, strict=True) for i in t][:1000],
        columns=["user", "item"],
    )
    start = time.perf_counter()
    model.partial_fit(events)
    update = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m")
        loaded = load_model(Path(tmp) / "m")
        users = split.test_users[:200]
        identical = bool(np.array_equal(loaded.score(users, split.new_items), model.score(users, split.new_items)))
        pickles = [p.name for p in Path(tmp).rglob("*.pkl")]
    return {
        "items": data.n_items,
        "interactions": len(data.interactions),
        "fit_seconds_all_interactions": fit_all,
        "events": len(events),
        "update_seconds": update,
        "popularity_choice": model.popularity_choice_,
        "reload_identical_scores": identical,
        "pickle_files": pickles,
    }


# -- rendering -----------------------------------------------------------------------------------------------
def draws_table(doc: dict, models) -> list[str]:
    ratio = doc["ratio_to_strongest_baseline"]
    lines = ["| model | median NDCG@10 | q1–q3 | range | median ratio to strongest baseline | ratio range |"]
    lines.append("|---|---|---|---|---|---|")
    for m in models:
        s = doc["summary"][m]["new"]["ndcg@10"]
        r = ratio["summary"].get(m) if ratio else None
        rcells = f"{r['median']:.2f}× | {r['min']:.2f}–{r['max']:.2f}×" if r else "— | —"
        lines.append(
            f"| {m} | {s['median']:.4f} | {s['q1']:.4f}–{s['q3']:.4f} | {s['min']:.4f}–{s['max']:.4f} | {rcells} |"
        )
    return lines


def per_draw_table(doc: dict, models) -> list[str]:
    lines = ["| seed | " + " | ".join(models) + " | strongest baseline |", "|---" * (len(models) + 2) + "|"]
    strongest = doc["ratio_to_strongest_baseline"]["strongest"]
    for d, best in zip(doc["draws"], strongest, strict=True):
        cells = [f"{d['results'][m]['new']['ndcg@10']:.4f}" for m in models]
        lines.append(f"| {d['protocol']['seed']} | " + " | ".join(cells) + f" | {best} |")
    return lines


def warmup_table(doc: dict) -> list[str]:
    lines = ["| revealed | " + " | ".join(WARMUP_MODELS) + " | launch-ranker / strongest baseline (median, range) |"]
    lines.append("|---" * (len(WARMUP_MODELS) + 2) + "|")
    for share in doc["reveal_values"]:
        summary = doc["summary"][share]
        cells = [f"{summary[m]['new']['ndcg@10']['median']:.4f}" for m in WARMUP_MODELS]
        r = doc["ratio_to_strongest_baseline"][share]["summary"]["launch-ranker"]
        lines.append(
            f"| {float(share):.0%} | " + " | ".join(cells) + f" | {r['median']:.2f}× ({r['min']:.2f}–{r['max']:.2f}×) |"
        )
    return lines


def named_table(doc: dict) -> list[str]:
    lines = ["| model | NDCG@10 | 95% CI |", "|---|---|---|"]
    for m in NAMED_MODELS:
        r = doc["results"][m]["new"]
        lo, hi = r["ndcg@10_ci"]
        lines.append(f"| {m} | {r['ndcg@10']:.4f} | [{lo:.4f}, {hi:.4f}] |")
    return lines


def targets(docs: dict) -> list[str]:
    """The issue's targets, each with the measured figure and met / missed, computed from the saved runs."""
    lines = [
        "### Targets",
        "",
        "Strongest baseline of each draw: the best of tfidf and bm25 on Amazon Scientific (lightfm, .0241 on its "
        "named split against tfidf's .0361, is not run on its draws: a fit takes about a minute here), and of "
        "tfidf, bm25 and lightfm on Complete Journey (lightfm's own runs on the same draws).",
        "",
    ]
    for stage in ("launch-amazon1", "launch-amazon2", "launch-cj2"):
        if stage not in docs:
            continue
        doc = docs[stage]
        ratio = doc["ratio_to_strongest_baseline"]["summary"]["launch-ranker"]["median"]
        mine = doc["summary"]["launch-ranker"]["new"]["ndcg@10"]["median"]
        zero = doc["summary"]["zero-shot"]["new"]["ndcg@10"]["median"]
        verdict = "met" if ratio >= 1.15 and mine >= zero else "missed"
        lines.append(
            f"- At launch, {stage[7:]}: median {ratio:.2f}× the strongest baseline (target 1.15×), median NDCG@10 "
            f"{mine:.4f} against zero-shot's {zero:.4f}: **{verdict}**."
        )
    for stage in ("warmup-amazon1", "warmup-cj2"):
        if stage not in docs:
            continue
        summary = docs[stage]["ratio_to_strongest_baseline"]
        for share, goal in (("0.02", 1.3), ("0.1", 1.2)):
            if share in summary:
                ratio = summary[share]["summary"]["launch-ranker"]["median"]
                verdict = "met" if ratio >= goal else "missed"
                lines.append(
                    f"- Warm-up, {stage[7:]}, {float(share):.0%} revealed: median {ratio:.2f}× the strongest baseline "
                    f"that also sees the purchases (target {goal}×): **{verdict}**."
                )
    if "named" in docs:
        for shop_name in ("amazon", "completejourney"):
            doc = docs["named"][shop_name]
            mine = doc["results"]["launch-ranker"]["new"]["ndcg@10"]
            lo = doc["results"]["zero-shot"]["new"]["ndcg@10_ci"][0]
            verdict = "met" if mine >= lo else "missed"
            lines.append(
                f"- Named split, {shop_name}: launch-ranker {mine:.4f}, zero-shot's 95% CI from {lo:.4f}: "
                f"**{verdict}** (not below it)."
            )
    if "speed" in docs:
        sp = docs["speed"]
        lines.append(
            f"- Speed: {sp['events']:,} events folded in {sp['update_seconds']:.2f} s (target < 1 s): "
            f"**{'met' if sp['update_seconds'] < 1 else 'missed'}**; fit on Complete Journey "
            f"{sp['fit_seconds_all_interactions'] / 60:.1f} min (target ≤ 10): "
            f"**{'met' if sp['fit_seconds_all_interactions'] <= 600 else 'missed'}**."
        )
    return lines + [""]


def with_lightfm(doc: dict, halves: list[dict]) -> dict:
    """The Complete Journey launch draws with lightfm's NDCG@10 from its own runs on the same draws (checked by
    the held-out categories and test users; the second half's tie-break seed differs, which moves models with
    tied scores such as tfidf a little, not lightfm's), and the ratios recomputed against the best of tfidf,
    bm25 and lightfm."""
    found = {}
    for half in halves:
        for draw in half["draws"]:
            found[draw["protocol"]["seed"]] = draw
    strongest, ratios = [], {m: [] for m in doc["summary"]}
    for draw in doc["draws"]:
        other = found[draw["protocol"]["seed"]]
        same = ("heldout_categories", "n_test_users", "n_new_items")
        if any(other["protocol"][key] != draw["protocol"][key] for key in same):
            raise SystemExit(f"lightfm run of seed {draw['protocol']['seed']} is not the same draw")
        extra = other["results"]
        draw["results"]["lightfm"] = extra["lightfm"]
        best = max(("tfidf", "bm25", "lightfm"), key=lambda m: draw["results"][m]["new"]["ndcg@10"])
        strongest.append(best)
        for m in ratios:
            ratios[m].append(draw["results"][m]["new"]["ndcg@10"] / draw["results"][best]["new"]["ndcg@10"])
    values = [d["results"]["lightfm"]["new"]["ndcg@10"] for d in doc["draws"]]
    doc["summary"]["lightfm"] = {"new": {"ndcg@10": _stats(values)}}
    ratios["lightfm"] = [
        v / d["results"][b]["new"]["ndcg@10"] for v, d, b in zip(values, doc["draws"], strongest, strict=True)
    ]
    doc["ratio_to_strongest_baseline"] = {
        "pool": "new",
        "metric": "ndcg@10",
        "baselines": ["tfidf", "bm25", "lightfm"],
        "strongest": strongest,
        "per_draw": ratios,
        "summary": {m: _stats(r) for m, r in ratios.items()},
    }
    return doc


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {
        "median": float(np.median(v)),
        "q1": float(np.quantile(v, 0.25)),
        "q3": float(np.quantile(v, 0.75)),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def render() -> str:
    docs = {s: json.loads((OUT / f"{s}.json").read_text()) for s in STAGES if (OUT / f"{s}.json").exists()}
    halves = [json.loads((OUT / f"{s}.json").read_text()) for s in LIGHTFM_STAGES if (OUT / f"{s}.json").exists()]
    if "launch-cj2" in docs and len(halves) == len(LIGHTFM_STAGES):
        docs["launch-cj2"] = with_lightfm(docs["launch-cj2"], halves)
    meta = json.loads((OUT / "run.json").read_text()) if (OUT / "run.json").exists() else {}
    out = ["## Launch ranker: new categories at launch and as the first purchases arrive", ""]
    out.append(f"`{meta.get('command', 'python benchmarks/launch.py')}`. {meta.get('machine', '')}")
    out.append("")
    out += targets(docs)
    titles = {
        "launch-amazon1": "Amazon Scientific, level 1",
        "launch-amazon2": "Amazon Scientific, level 2",
        "launch-cj2": "Complete Journey (demo reduction), level 2",
    }
    for stage, title in titles.items():
        if stage in docs:
            out += [f"### At launch: {title}, {LAUNCH_DRAWS} seeded 20% draws (new pool)", ""]
            models = NAMED_MODELS if "lightfm" in docs[stage]["summary"] else LAUNCH_MODELS
            out += draws_table(docs[stage], models) + [""] + per_draw_table(docs[stage], models) + [""]
            ratios = docs[stage]["ratio_to_strongest_baseline"]
            ratio_figure = draws_figures(docs[stage]["draws"], ratios)[-1]
            out += [figure_markdown(ratio_figure, f"{stage}-ratio"), ""]
    for stage, title in (("warmup-amazon1", "Amazon Scientific, level 1"), ("warmup-cj2", "Complete Journey, level 2")):
        if stage in docs:
            out += [f"### Warm-up: {title}, {WARMUP_DRAWS} draws, median NDCG@10 of the users not revealed", ""]
            out += warmup_table(docs[stage]) + [""]
            out += [figure_markdown(warmup_median_figure(docs[stage]), stage), ""]
    if "named" in docs:
        for shop_name, title in (
            ("amazon", "Amazon Scientific, four level-1 categories"),
            ("completejourney", "Complete Journey, the demo's five level-2 categories"),
        ):
            out += [f"### Named split: {title}", ""] + named_table(docs["named"][shop_name]) + [""]
    if "speed" in docs:
        s = docs["speed"]
        out += [
            "### Speed and saving",
            "",
            f"- Fit on Complete Journey's demo reduction ({s['items']:,} items, {s['interactions']:,} interactions, "
            f"every interaction): {s['fit_seconds_all_interactions']:.0f} s.",
            f"- Folding {s['events']:,} new events into a fitted model (histories, revealed counts, the popularity "
            f"weight chosen again): {s['update_seconds']:.2f} s.",
            f"- Saved and loaded: identical scores {s['reload_identical_scores']}; pickle files: "
            f"{len(s['pickle_files'])}.",
            "",
        ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stage", action="append", choices=STAGES + LIGHTFM_STAGES, help="run only these stages (repeatable)"
    )
    parser.add_argument("--render-only", action="store_true", help="rebuild the docs section from saved JSON")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        embeddings = EmbeddingSource("minilm")
        start = time.perf_counter()
        for stage in args.stage or STAGES:
            print(f"== {stage}", flush=True)
            stage_start = time.perf_counter()
            doc = run_stage(stage, embeddings)
            doc = {"seconds": time.perf_counter() - stage_start, **doc} if isinstance(doc, dict) else doc
            atomic_write_text(OUT / f"{stage}.json", json.dumps(doc, indent=1, default=float))
        meta = {
            "command": "python benchmarks/launch.py" + "".join(f" --stage {s}" for s in args.stage or ()),
            "machine": machine_line((time.perf_counter() - start) / 60),
        }
        atomic_write_text(OUT / "run.json", json.dumps(meta, indent=1))
    write_section("launch", render())


if __name__ == "__main__":
    main()
