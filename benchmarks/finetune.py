"""Benchmark: models trained on warm categories against zero-shot and TF-IDF on held-out (new) categories.

    .venv/bin/python benchmarks/finetune.py                       # every trained model, both shops
    .venv/bin/python benchmarks/finetune.py --models mlp-head --datasets amazon   # a part (merged into the JSON)
    .venv/bin/python benchmarks/finetune.py --models cross-encoder --datasets amazon --training max_pairs=1000
    .venv/bin/python benchmarks/finetune.py --render-only    # rewrite the docs section from the saved JSON

Each trained model goes through `zsrec train ... --protocol leave-category-out` in its own process (so its
training time and peak memory are its own), then every model folder is evaluated beside the untrained
references (`zero-shot`, `tfidf`) by `zsrec evaluate`'s library path on the same split: NDCG@10 and Recall@10
on the new-item pool with bootstrap 95% CIs. Shops:
  1. Amazon Scientific (../shared/data/amazon-scientific), level 1, the four categories of the foundation issue;
  2. Complete Journey (the embedded default) reduced as in the demo (products bought by >= 30 households),
     level 2, a seeded 20% of the categories.
Optionally (`--loo`) the leave-one-out protocol on Amazon Scientific, whole catalog, beside published figures.
Results merge into docs/benchmarks/finetune.json (so parts can be run separately) and the section
`finetune` of docs/benchmarks.md is rewritten from it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
from common import REPO, machine_line, write_section  # noqa: E402
from new_category import AMAZON, SCIENTIFIC_CATEGORIES  # noqa: E402

from zsrec.data import load_dataset  # noqa: E402
from zsrec.data.splits import LEAVE_ONE_OUT, SplitSettings  # noqa: E402
from zsrec.demo import DemoSettings, keep_popular_items  # noqa: E402
from zsrec.evaluation.evaluate import EvalSettings  # noqa: E402
from zsrec.evaluation.run import run_evaluation  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.models.registry import HEAD_MODELS  # noqa: E402

TRAINED = ["seed-linear", "two-tower-head", "mlp-head", "two-tower-lora", "two-tower-full", "cross-encoder"]
REFERENCES = ["tfidf", "zero-shot"]
RESULTS = REPO / "docs" / "benchmarks" / "finetune.json"
COMMAND = ".venv/bin/python benchmarks/finetune.py"
PUBLISHED_LOO = {"Recformer": (0.1027, 0.1448), "UniSRec": (0.0862, 0.1255), "ZESRec": (0.0843, 0.1260)}


def write_journey(folder: Path) -> str:
    """Complete Journey reduced as in the demo (products bought by >= 30 households), written as a dataset
    folder that `zsrec train` and `evaluate` read; returns its spec."""
    data = keep_popular_items(load_dataset("completejourney"), DemoSettings().min_households)
    folder.mkdir(parents=True, exist_ok=True)
    data.items.to_parquet(folder / "items.parquet", index=False)
    inter = data.interactions
    pd.DataFrame(
        {
            "user_id": data.user_map.ids(inter["user"].to_numpy()),
            "item_id": data.item_map.ids(inter["item"].to_numpy()),
            "timestamp": inter["timestamp"].to_numpy(),
        }
    ).to_parquet(folder / "interactions.parquet", index=False)
    data.users[["user_id", "profile"]].to_parquet(folder / "users.parquet", index=False)
    return str(folder)


def shops(journey: str = "completejourney") -> dict[str, tuple[str, SplitSettings, list[str]]]:
    """name -> (dataset spec, split, the split's `zsrec train` options)."""
    amazon = SplitSettings(level=1, categories=SCIENTIFIC_CATEGORIES, min_history=3, seed=0)
    cj = SplitSettings(level=2, holdout_fraction=0.2, min_history=3, seed=0)
    return {
        "amazon": (
            f"amazon-lcrec:{AMAZON}",
            amazon,
            ["--level", "1", "--categories", ";".join(SCIENTIFIC_CATEGORIES)],
        ),
        "completejourney": (journey, cj, ["--level", "2", "--holdout-fraction", "0.2"]),
        "amazon-loo": (f"amazon-lcrec:{AMAZON}", SplitSettings(protocol=LEAVE_ONE_OUT, min_history=3), []),
    }


def train(
    spec: str,
    protocol: str,
    split_options: list[str],
    model: str,
    out: Path,
    timeout: float,
    extra: tuple[str, ...] = (),
) -> dict:
    """`zsrec train` in a fresh process (`extra`: more options); its training.json plus the wall time, or the
    failure."""
    command = [sys.executable, "-m", "zsrec.cli", "train", spec, "--model", model, "--protocol", protocol]
    command += [*split_options, "--min-history", "3", "--seed", "0", *extra, "--out", str(out)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f}s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    record = json.loads((out / "training.json").read_text())
    record["wall_seconds"] = time.perf_counter() - start
    record["folder_mib"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    return record


# Leave-one-out trains the heads as that protocol tests them: each pair's input is every other item of its user,
# negatives come from the whole catalog (the next item may be in any category), and no early stopping, because
# the heads' validation holds out categories, which is the new-category question, not the next-item one.
LOO_HEAD_TRAINING = "pair_history=leave-one-out,negatives=catalog,epochs=5,min_validation_users=1000000"


def training_options(shop: str, model: str, training: str = "") -> tuple[str, ...]:
    """Extra `zsrec train` options of a model on a shop: the heads' settings under leave-one-out, else the
    run's `--training` (if any)."""
    if shop == "amazon-loo" and model in HEAD_MODELS:
        return ("--training", LOO_HEAD_TRAINING)
    return ("--training", training) if training else ()


def epoch_summary(training_log) -> dict:
    """Which epoch early stopping kept (0 = the untrained start), how many ran, and the validation NDCG@10 of
    each, from a model's training log; {} for a log without them (the cross-encoder selects on F1)."""
    if not isinstance(training_log, dict) or "best_epoch" not in training_log:
        return {}
    epochs = training_log.get("epochs") or []
    return {
        "best_epoch": training_log["best_epoch"],
        "epochs_run": max((e["epoch"] for e in epochs), default=0),
        "validation_ndcg@10": [e.get("validation_ndcg@10") for e in epochs],
    }


def run_shop(name: str, models: list[str], timeout: float, log, training: str = "") -> dict:
    with tempfile.TemporaryDirectory(prefix="zsrec-finetune-") as tmp:
        journey = write_journey(Path(tmp) / "journey") if name == "completejourney" else "completejourney"
        spec, split, options = shops(journey)[name]
        protocol = split.protocol
        trained, folders = {}, {}
        for model in models:
            log(f"[{name}] training {model}")
            extra = training_options(name, model, training)
            record = train(spec, protocol, options, model, Path(tmp) / model, timeout, extra)
            trained[model] = (
                {
                    k: record.get(k)
                    for k in ("error", "train_seconds", "wall_seconds", "n_trainable_params", "peak_memory_mib")
                }
                | {"folder_mib": record.get("folder_mib"), "options": " ".join(extra)}
                | epoch_summary(record.get("training_log"))
            )
            if "error" not in record:
                folders[model] = str(Path(tmp) / model)
            log(f"[{name}] {model}: {trained[model]}")
        pools = ("all",) if protocol == LEAVE_ONE_OUT else ("new",)
        # under leave-one-out the heads train on next items: set them beside their own untrained start too
        references = [*REFERENCES, "zero-shot-mean"] if protocol == LEAVE_ONE_OUT else REFERENCES
        names = [*references, *folders.values()]
        log(f"[{name}] evaluating {', '.join([*references, *folders])}")
        doc = run_evaluation(spec, names, split, EvalSettings(ks=(10, 50), pools=pools, n_bootstrap=1000, seed=0))
    back = {folder: model for model, folder in folders.items()}
    doc["results"] = {back.get(k, k): v for k, v in doc["results"].items()}
    doc["models"] = {back.get(k, k): v for k, v in doc["models"].items()}
    doc["trained"] = trained
    return doc


def table(doc: dict) -> str:
    pool = "all" if doc["protocol"]["name"] == LEAVE_ONE_OUT else "new"
    zs = doc["results"].get("zero-shot", {}).get(pool, {}).get("ndcg@10")
    rows = [
        "| model | NDCG@10 [95% CI] | × zero-shot | Recall@10 | train s | kept epoch | trainable params | peak MiB "
        "| folder MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, result in doc["results"].items():
        m = result[pool]
        ci = m.get("ndcg@10_ci") or [None, None]
        t = doc["trained"].get(model, {})
        ratio = f"{m['ndcg@10'] / zs:.2f}" if zs else "–"
        ci_text = f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci[0] is not None else ""
        rows.append(
            f"| {model} | {m['ndcg@10']:.4f} {ci_text} | {ratio} | {m['recall@10']:.4f} | "
            f"{_num(t.get('train_seconds'), '.0f')} | {_kept(t)} | {_num(t.get('n_trainable_params'), ',')} | "
            f"{_num(t.get('peak_memory_mib'), '.0f')} | {_num(t.get('folder_mib'), '.2f')} |"
        )
    failed = {m: t["error"] for m, t in doc["trained"].items() if t.get("error")}
    for model, error in failed.items():
        rows.append(f"| {model} | failed: {error} | | | | | | | |")
    options = {m: t["options"] for m, t in doc["trained"].items() if t.get("options") and m not in failed}
    if options and doc["protocol"]["name"] != LEAVE_ONE_OUT:
        rows += [
            "",
            "Trained with options other than the defaults: "
            + "; ".join(f"{m} `{o}`" for m, o in options.items())
            + ".",
        ]
    return "\n".join(rows)


def _kept(trained: dict) -> str:
    """'best of run', e.g. '0 of 2' (early stopping went back to the untrained start); '–' when not logged."""
    if trained.get("best_epoch") is None:
        return "–"
    return f"{trained['best_epoch']} of {trained['epochs_run']}"


def _num(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown(results: dict) -> str:
    parts = [
        "## Trained models on new categories (`benchmarks/finetune.py`)",
        "",
        f"Command: `{COMMAND}` (parts: `--datasets`, `--models`, `--loo`; results merge). "
        + results.get("machine", ""),
        "Every trained model is trained by `zsrec train --protocol leave-category-out` (its own process: training "
        "time and peak memory are its own) on the split's warm categories, early-stopped on validation "
        "categories carved from them, and evaluated on the held-out test categories' items (new pool) beside "
        "the untrained `zero-shot` and `tfidf`. Training times are on a machine shared with other jobs. "
        "*Kept epoch*: the epoch whose weights early stopping kept, of those run (0 = the untrained start; a "
        "trained epoch of a head, LoRA or full fine-tuning is kept only if its per-user validation gain over the "
        "untrained start has a 95% paired bootstrap CI above 0; '–' for the cross-encoder, which selects on "
        "validation F1, and for runs logged before this column). LoRA and full fine-tuning score centred vectors "
        "(the catalog mean removed) and users from their whole history, as `zero-shot`'s centred semantic part does.",
    ]
    titles = {
        "amazon": "Amazon Scientific, level 1, the foundation's four held-out categories",
        "completejourney": "Complete Journey (products of >= 30 households), level 2, a seeded 20% held out",
        "amazon-loo": "Amazon Scientific, leave-one-out, whole catalog",
    }
    for name, title in titles.items():
        doc = results.get("shops", {}).get(name)
        if doc is None:
            continue
        p = doc["protocol"]
        items = "" if name == "amazon-loo" else f", {p['n_new_items']:,} new items"
        parts += ["", f"### {title}", "", f"{p['n_test_users']:,} test users{items}.", ""]
        parts.append(table(doc))
        if name == "amazon-loo":
            parts += ["", f"The heads are trained with `--training {LOO_HEAD_TRAINING}` (see `training_options`)."]
            published = "; ".join(f"{k} {v[0]:.4f} / {v[1]:.4f}" for k, v in PUBLISHED_LOO.items())
            parts += ["", f"Published (NDCG@10 / Recall@10; different preprocessing): {published}."]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="amazon,completejourney", help="amazon, completejourney")
    parser.add_argument("--models", default=",".join(TRAINED), help="trained models to run")
    parser.add_argument("--loo", action="store_true", help="also the leave-one-out protocol on Amazon Scientific")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one model may train")
    parser.add_argument(
        "--training", default="", help="`zsrec train --training` for this run's models (field=value,...)"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the docs section from the saved results; run nothing"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        write_section("finetune", markdown(json.loads(RESULTS.read_text())))
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    names = [d.strip() for d in args.datasets.split(",") if d.strip()] + (["amazon-loo"] if args.loo else [])
    unknown = [n for n in names if n not in shops()]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}")
    start = time.perf_counter()

    def log(text: str) -> None:
        print(f"{time.perf_counter() - start:7.1f}s {text}", file=sys.stderr, flush=True)

    for name in names:
        doc = run_shop(name, models, args.timeout, log, args.training)
        # read what is there only now: another part may have finished while this one ran
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"shops": {}}
        old = results["shops"].get(name)
        if old is not None:  # keep the models of an earlier part that this part did not run
            for key in ("results", "models", "trained"):
                doc[key] = {**{k: v for k, v in old.get(key, {}).items() if k not in doc[key]}, **doc[key]}
        results["shops"][name] = doc
        results["machine"] = machine_line()
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESULTS, json.dumps(results, indent=2) + "\n")
        write_section("finetune", markdown(results))
        log(f"[{name}] written to {RESULTS.relative_to(REPO)} and docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
