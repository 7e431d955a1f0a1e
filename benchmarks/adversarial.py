"""Benchmark: does adversarial training make a fine-tuned encoder resist keyword stuffing, at what clean cost?

    .venv/bin/python benchmarks/adversarial.py      # about 50 min on 2 cores (two LoRA trainings + robustness)
    .venv/bin/python benchmarks/adversarial.py --variants plain,augment --model two-tower-lora
    .venv/bin/python benchmarks/adversarial.py --model two-tower-head --variants plain,stuffing \
        --section adversarial-head

Amazon Scientific (../shared/data/amazon-scientific), leave-category-out at level 1 with the four held-out
categories of benchmarks/new_category.py (or `--shop completejourney`: level 2, a seeded 20% held out, as in
benchmarks/finetune.py). The same model is trained by `zsrec train --protocol
leave-category-out` once per variant (below), each in its own process, then all folders go through
`zsrec robustness`'s library path together: the held-out items' text is tampered with and each saved model
re-reads it (`with_item_text`, nothing retrained). Reported per variant: clean NDCG@10 on the new pool with its
95% CI, and stuffing success (the share of users with a stuffed item they did not pick in their top 10).
Acceptance (issue 5): stuffing success cut by >= 30% relative at <= 2% relative loss of clean NDCG@10, each
variant against `plain`. Written to docs/benchmarks.md (section `adversarial`) and
docs/benchmarks/adversarial.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, machine_line, write_section  # noqa: E402
from finetune import shops, train  # noqa: E402
from new_category import AMAZON  # noqa: E402

from zsrec.evaluation.run import RunOptions  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.models.registry import HEAD_MODELS  # noqa: E402
from zsrec.robustness.attacks import ATTACKS  # noqa: E402
from zsrec.robustness.evaluate import RobustnessSettings  # noqa: E402
from zsrec.robustness.run import run_robustness  # noqa: E402

#: variant name -> `zsrec train --adversarial` value ("" = none)
VARIANTS = {
    "plain": "",
    "augment": "augment=typos+stuffing",  # typos on positives, stuffed warm items as hard negatives
    "stuffing": "augment=stuffing",  # stuffed warm items as hard negatives only
    # the same, one text in ten instead of three in ten: stuffing's cut had room to spare (-91%), its clean loss not
    "stuffing-light": "augment=stuffing,augment_prob=0.1",
    # rarer still, for the heads: one stuffed copy per 33 and per 100 pairs (0.1 already cut stuffing to 0 at -3.8%)
    "stuffing-0.03": "augment=stuffing,augment_prob=0.03",
    "stuffing-0.01": "augment=stuffing,augment_prob=0.01",
    # heads only: stuffed copies penalised where they outscore their own originals, not used as negatives
    "stuffing-no-gain": "augment=stuffing,stuffing_loss=no-gain",
    "fgm": "method=fgm,epsilon=0.5",
    "fgm+augment": "method=fgm,epsilon=0.5,augment=typos+stuffing",
}
SHOP_NAMES = {"amazon": "Amazon Scientific", "completejourney": "Complete Journey"}
RESULTS = REPO / "docs" / "benchmarks" / "adversarial.json"
COMMAND = ".venv/bin/python benchmarks/adversarial.py"
K = 10
# One epoch and no validation fold, for every variant: with early stopping on validation categories, `fit`
# keeps the untrained encoder on this split (issue 4's benchmark), and both variants would be the same model.
TRAINING = "epochs=1,min_validation_users=1000000"
#: the heads over frozen embeddings, likewise without a validation fold (early stopping kept their untrained
#: epoch 0, zero-shot-mean, on this split: benchmarks/finetune.py), for a few of their fast epochs
HEAD_TRAINING = "epochs=3,min_validation_users=1000000"
TRAINING_WHY = {
    TRAINING: "one epoch, no validation fold, so the trained weights are kept: with early stopping this split's "
    "validation categories send both variants back to the untrained encoder",
    HEAD_TRAINING: "three epochs, no validation fold, so the trained weights are kept: with early stopping the "
    "heads keep their untrained epoch 0 on this split",
}


def verdict(plain: dict, other: dict) -> dict:
    """Relative stuffing cut and clean NDCG change of `other` against `plain`, and whether issue 5's bar is met."""
    key, share = f"ndcg@{K}", f"top{K}_share"
    cut = 1 - other["attacks"]["stuffing"][share] / plain["attacks"]["stuffing"][share]
    change = other["clean"][key] / plain["clean"][key] - 1
    return {"stuffing_cut": cut, "clean_change": change, "met": cut >= 0.30 and change >= -0.02}


def markdown(doc: dict, minutes: float, section: str) -> str:
    key, share = f"ndcg@{K}", f"top{K}_share"
    p = doc["robustness"]["protocol"]
    lines = [
        "## Adversarial training against keyword stuffing (`benchmarks/adversarial.py`)"
        + ("" if section == "adversarial" else f", variants {', '.join(doc['variants'])}"),
        "",
        f"Command: `{doc['command']}`. {machine_line(minutes)}",
        f"{SHOP_NAMES[doc.get('shop', 'amazon')]}, level {p['level']}, held out: {'; '.join(p['heldout_categories'])}; "
        f"{p['n_test_users']:,} test users, {p['n_new_items']:,} new items. Model: `{doc['model']}`, trained once "
        f"per variant by `zsrec train --protocol leave-category-out --training {doc['training']} "
        f"[--adversarial ...]` ({TRAINING_WHY.get(doc['training'], 'the training settings given')}); each "
        "saved folder then re-reads the tampered text (`zsrec robustness --models FOLDER,...`, nothing "
        "retrained). Stuffing appends "
        f"the {doc['robustness']['settings']['attack']['n_keywords']} most frequent title words of other "
        f"categories to {len(doc['robustness']['stuffed_items'])} random new items; stuffing success = share of "
        f"users with a stuffed item they did not pick in their top {K}.",
        "",
        f"| variant | `--adversarial` | clean NDCG@{K} [95% CI] | stuffing success | same items unstuffed | "
        f"typos NDCG@{K} | stuffing cut vs plain | clean change vs plain | acceptance | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, entry in doc["variants"].items():
        if "error" in entry:
            lines.append(f"| {variant} | `{VARIANTS[variant]}` | failed: {entry['error']} | | | | | | | |")
            continue
        r = entry["robustness"]
        lo, hi = r["clean"][f"{key}_ci"]
        stuffing = r["attacks"]["stuffing"]
        v = entry.get("verdict")
        versus = (
            f"{-v['stuffing_cut']:+.0%} | {v['clean_change']:+.1%} | {'met' if v['met'] else 'not met'}"
            if v
            else "– | – | (baseline)"
        )
        lines.append(
            f"| {variant} | `{VARIANTS[variant] or 'none'}` | {r['clean'][key]:.4f} [{lo:.4f}, {hi:.4f}] | "
            f"{stuffing[share]:.3f} | {stuffing[f'{share}_clean']:.3f} | {r['attacks']['typos'][key]:.4f} | "
            f"{versus} | {entry['training']['wall_seconds']:.0f} |"
        )
    lines += [
        "",
        "Acceptance (issue 5): stuffing success cut by ≥ 30% relative at ≤ 2% relative loss of clean NDCG@10, "
        "against the same model trained without adversarial training (`plain`). One seed, one split: the clean "
        f"NDCG CIs above show how much of a difference is noise. Raw figures: `docs/benchmarks/{section}.json`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default="two-tower-lora",
        help="two-tower-lora, two-tower-full, cross-encoder, or a head (two-tower-head, mlp-head, seed-linear: "
        "only the stuffing variants apply to heads)",
    )
    parser.add_argument("--variants", default="plain,augment", help=f"comma-separated among {', '.join(VARIANTS)}")
    parser.add_argument(
        "--shop",
        default="amazon",
        choices=list(SHOP_NAMES),
        help="amazon: Scientific, the four held-out categories; completejourney: level 2, a seeded 20%% held out",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one training may take")
    parser.add_argument(
        "--training",
        default=None,
        help=f"`zsrec train --training` for every variant (default: {TRAINING!r} for the language-model "
        f"trainers, {HEAD_TRAINING!r} for the heads: no validation fold, so the trained weights are kept; with "
        "early stopping both variants fell back to the untrained model)",
    )
    parser.add_argument(
        "--section",
        default="adversarial",
        help="section of docs/benchmarks.md (and name of the JSON in docs/benchmarks/) to write",
    )
    args = parser.parse_args(argv)
    if args.training is None:
        args.training = HEAD_TRAINING if args.model in HEAD_MODELS else TRAINING
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "plain" not in variants:
        print(f"error: --variants must include plain and name only {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    if args.shop == "amazon" and not (AMAZON / "Scientific.item.json").exists():
        print(f"error: {AMAZON} not found; the benchmark reads ../shared/data/amazon-scientific", file=sys.stderr)
        return 2
    started = time.perf_counter()
    spec, split, options = shops()[args.shop]
    doc: dict = {
        "model": args.model,
        "shop": args.shop,
        "training": args.training,
        "command": " ".join([COMMAND, *(argv or sys.argv[1:])]),
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="zsrec-adversarial-") as tmp:
        folders = {}
        for variant in variants:
            folder = Path(tmp) / variant
            extra = ("--training", args.training) if args.training else ()
            extra += ("--adversarial", VARIANTS[variant]) if VARIANTS[variant] else ()
            print(f"training {args.model} ({variant})", flush=True)
            record = train(spec, "leave-category-out", options, args.model, folder, args.timeout, extra)
            doc["variants"][variant] = {"training": record} if "error" not in record else record
            if "error" not in record:
                folders[variant] = str(folder)
            print(f"  {json.dumps({k: record.get(k) for k in ('wall_seconds', 'error')})}", flush=True)
        if "plain" not in folders:
            print("error: the plain model did not train; nothing to compare", file=sys.stderr)
            return 1
        print("robustness of the saved folders", flush=True)
        settings = RobustnessSettings(attacks=ATTACKS, n_bootstrap=1000)
        robust = run_robustness(spec, list(folders.values()), split, settings, RunOptions(command=[COMMAND]))
    doc["robustness"] = {k: v for k, v in robust.items() if k != "results"}
    for variant, folder in folders.items():
        doc["variants"][variant]["robustness"] = robust["results"][folder]
    plain = doc["variants"]["plain"]["robustness"]
    for variant in folders:
        if variant != "plain":
            doc["variants"][variant]["verdict"] = verdict(plain, doc["variants"][variant]["robustness"])
    minutes = (time.perf_counter() - started) / 60
    atomic_write_text(RESULTS.with_name(f"{args.section}.json"), json.dumps(doc, indent=1, default=str) + "\n")
    text = markdown(doc, minutes, args.section)
    write_section(args.section, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
