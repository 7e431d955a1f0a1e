"""Benchmark: the text encoder on CPU — sentence-transformers, zsrec torch, ONNX fp32 and ONNX int8.

    make bench-encoders      # = .venv/bin/python benchmarks/encoders.py  (all stages, then the docs section)
    .venv/bin/python benchmarks/encoders.py --stage speed [--stage ...]   # some stages only
    .venv/bin/python benchmarks/encoders.py --render-only                 # docs from saved JSON

Stages (each writes docs/benchmarks/encoders/STAGE.json):
- speed: texts/s of each engine on the same real catalog texts (Amazon Scientific items, rendered by the default
  item template), nothing cached. The texts are cut into chunks that the engines take in turn, so that a busy
  shared machine slows each engine alike; each engine's time is the sum over its chunks. Also the cosine of
  each engine's vectors to sentence-transformers'.
- ndcg-amazon, ndcg-cj: `zero-shot` NDCG@10 (new pool) on the launch benchmark's named splits (Amazon
  Scientific's four level-1 categories; Complete Journey's demo reduction, its five level-2 categories), with
  the torch fp32 encoder and with int8 (vectors from the embedding cache where they are there already).
- memory: peak RSS of `zsrec.embed.embed_items` (int8 and torch fp32, or those `--memory-precision` names; no
  cache) on samples of a synthetic catalog built from real titles, each in a fresh process; a straight line
  through the samples gives the estimate at 100k items (time likewise, from the measured rate): an hours-long
  run is not rerun by anyone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import REPO, machine_line, write_section  # noqa: E402

from zsrec.data import load_dataset  # noqa: E402
from zsrec.encoders import load_encoder  # noqa: E402
from zsrec.encoders.templates import ItemTextTemplate  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402

AMAZON = REPO.parent / "shared" / "data" / "amazon-scientific"
OUT = REPO / "docs" / "benchmarks" / "encoders"
STAGES = ("speed", "ndcg-amazon", "ndcg-cj", "memory")
ENGINES = {  # name in the tables: encoder spec (None: sentence-transformers called directly)
    "sentence-transformers fp32": None,
    "zsrec torch fp32": "minilm",
    "ONNX fp32": "minilm@onnx-fp32",
    "ONNX int8": "minilm@int8",
}
THREADS = 2
N_SPEED_TEXTS, CHUNK = 1000, 250
MEMORY_SIZES = (2000, 4000)
# Below this many items a sample's peak may still grow with the longest texts it happens to hold (one batch's
# working memory, up to batch size x max length), not with the item count: no straight line is drawn then.
MIN_EXTRAPOLATION_ITEMS = 1000
TARGET_ITEMS = 100_000


def amazon():
    if not (AMAZON / "Scientific.item.json").exists():
        sys.exit(f"{AMAZON} not found: this benchmark reads ../shared/data/amazon-scientific")
    return load_dataset(f"amazon-lcrec:{AMAZON}")


class _SentenceTransformersBaseline:
    """sentence-transformers' own encode, as a user of the library would call it (batch 64, normalised)."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from zsrec.encoders.sentence_transformer import packaged_minilm_path

        self._st = SentenceTransformer(str(packaged_minilm_path()), device="cpu", local_files_only=True)
        self._st.max_seq_length = 256

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._st.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)


def speed() -> dict:
    import torch

    torch.set_num_threads(THREADS)
    texts = ItemTextTemplate().render(amazon().items)
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.permutation(len(texts))[:N_SPEED_TEXTS]]
    engines = {
        name: _SentenceTransformersBaseline() if spec is None else load_encoder(spec, threads=THREADS)
        for name, spec in ENGINES.items()
    }
    for engine in engines.values():  # warm-up: first calls allocate
        engine.encode(texts[:16])
    seconds = dict.fromkeys(engines, 0.0)
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in engines}
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        for name, engine in engines.items():
            began = time.perf_counter()
            vectors[name].append(engine.encode(chunk))
            seconds[name] += time.perf_counter() - began
        print(f"  {start + len(chunk)} texts", {k: round(v, 1) for k, v in seconds.items()}, flush=True)
    base = np.vstack(vectors["sentence-transformers fp32"])
    out = {"n_texts": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])), "threads": THREADS}
    for name in engines:
        cos = (np.vstack(vectors[name]) * base).sum(axis=1)
        out[name] = {
            "seconds": seconds[name],
            "texts_per_s": len(texts) / seconds[name],
            "cos_mean": float(cos.mean()),
            "cos_min": float(cos.min()),
        }
    return out


def ndcg(shop: str) -> dict:
    from launch import NAMED_SPLITS
    from launch import shop as load_shop

    from zsrec.evaluation.evaluate import EvalSettings
    from zsrec.evaluation.run import run_evaluation
    from zsrec.models.embedding_source import EmbeddingSource

    data = load_shop(shop)
    settings = EvalSettings(ks=(10,), pools=("new",), n_bootstrap=0)
    out = {"n_items": data.n_items}
    for precision, spec in (("fp32", "minilm"), ("int8", "minilm@int8")):
        began = time.perf_counter()
        result = run_evaluation(
            data, ("zero-shot",), NAMED_SPLITS[shop], settings, encoder=spec, embeddings=EmbeddingSource(spec)
        )
        out[precision] = {
            "ndcg@10": result["results"]["zero-shot"]["new"]["ndcg@10"],
            "seconds": time.perf_counter() - began,
        }
        print(f"  {shop} {precision}: {out[precision]}", flush=True)
    out["relative_change"] = out["int8"]["ndcg@10"] / out["fp32"]["ndcg@10"] - 1
    return out


def synthetic_items(n: int, seed: int = 0) -> pd.DataFrame:
    """Catalog rows mixing two real Amazon Scientific items each: realistic lengths and words."""
    items = amazon().items
    rng = np.random.default_rng(seed)
    p, q = rng.integers(0, len(items), n), rng.integers(0, len(items), n)
    titles, cats, descs = items["title"].tolist(), items["category"].tolist(), items["description"].fillna("").tolist()
    return pd.DataFrame(
        {
            "item_id": [f"s{j}" for j in range(n)],
            "title": [f"{titles[i][:60]} / {titles[k][:40]}" for i, k in zip(p, q, strict=True)],
            "category": [cats[i] for i in p],
            "description": [descs[k] for k in q],
            "brand": "",
        }
    )


def memory_child(precision: str, n: int) -> None:
    """In a fresh process: embed `n` synthetic items, print peak RSS and seconds as JSON."""
    from zsrec.embed import EmbedSettings, embed_items

    items = synthetic_items(n)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    embed_items(items, EmbedSettings(precision=precision, use_cache=False))
    seconds = time.perf_counter() - began
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "seconds": seconds, "peak_rss_mib": rss / 1024, "rss_before_mib": rss_before / 1024}))


def memory(precisions: tuple[str, ...] = ("int8", "fp32")) -> dict:
    out: dict = {"sizes": list(MEMORY_SIZES), "target_items": TARGET_ITEMS, "precisions": list(precisions)}
    for precision in precisions:
        runs = []
        for n in MEMORY_SIZES:
            command = [sys.executable, __file__, "--memory-child", precision, str(n)]
            done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {precision} {runs[-1]}", flush=True)
        (n0, n1), (r0, r1) = MEMORY_SIZES, (runs[0]["peak_rss_mib"], runs[1]["peak_rss_mib"])
        per_item = max((r1 - r0) / (n1 - n0), 0.0)
        rate = (n1 - n0) / max(runs[1]["seconds"] - runs[0]["seconds"], 1e-9)
        out[precision] = {
            "runs": runs,
            "mib_per_1k_items": per_item * 1000,
            "peak_rss_mib_at_target": r1 + per_item * (TARGET_ITEMS - n1),
            "items_per_s": rate,
            "hours_at_target": TARGET_ITEMS / rate / 3600,
        }
    return out


def render() -> str:
    docs = {s: json.loads((OUT / f"{s}.json").read_text()) for s in STAGES if (OUT / f"{s}.json").exists()}
    lines = [
        "## Text encoder on CPU (`benchmarks/encoders.py`)",
        "",
        "`make bench-encoders` runs every stage. The machine was shared with other work (other benchmarks and test "
        "suites) while this ran, so absolute speeds are low and noisy: compare figures within one table only.",
        "",
    ]
    for stage, d in docs.items():
        load = f" Load average at its end: {d['load_average_at_end']:.1f}." if "load_average_at_end" in d else ""
        lines += [f"- {stage}: `{d['command'].strip()}`. {d['machine']}{load}"] if "command" in d else []
    lines.append("")
    lines += _speed_lines(docs.get("speed")) + _ndcg_lines(docs) + _memory_lines(docs.get("memory"))
    return "\n".join(lines + _verdict_lines(docs))


def _verdict_lines(docs: dict) -> list[str]:
    """The condition for int8 to become the default: 3x sentence-transformers, NDCG within 1% on both shops."""
    if not all(stage in docs for stage in ("speed", "ndcg-amazon", "ndcg-cj")):
        return []
    s = docs["speed"]
    ratio = s["ONNX int8"]["texts_per_s"] / s["sentence-transformers fp32"]["texts_per_s"]
    changes = [docs[stage]["relative_change"] for stage in ("ndcg-amazon", "ndcg-cj")]
    met = ratio >= 3 and all(abs(c) <= 0.01 for c in changes)
    return [
        "### int8 as the default?",
        "",
        f"Condition: int8 at least 3× sentence-transformers' texts/s (measured {ratio:.2f}×) and zero-shot NDCG@10 "
        f"within 1% on both shops (measured {changes[0]:+.1%} and {changes[1]:+.1%}): "
        + ("met, int8 is the default." if met else "not met, so the default stays torch fp32."),
        "",
    ]


def _speed_lines(s: dict | None) -> list[str]:
    if s is None:
        return []
    base = s["sentence-transformers fp32"]["texts_per_s"]
    lines = [
        f"### Speed: {s['n_texts']:,} Amazon Scientific item texts (mean {s['mean_chars']:.0f} characters), "
        f"no cache, {s['threads']} threads, engines taking turns by chunks of {CHUNK}",
        "",
        "| engine | texts/s | × sentence-transformers | cosine to s-t (mean / min) |",
        "|---|---|---|---|",
    ]
    for name in ENGINES:
        r = s[name]
        lines.append(
            f"| {name} | {r['texts_per_s']:.1f} | {r['texts_per_s'] / base:.2f}× | "
            f"{r['cos_mean']:.4f} / {r['cos_min']:.4f} |"
        )
    return [*lines, ""]


def _ndcg_lines(docs: dict) -> list[str]:
    rows = [
        (name, docs[stage])
        for stage, name in (("ndcg-amazon", "Amazon Scientific"), ("ndcg-cj", "Complete Journey"))
        if stage in docs
    ]
    if not rows:
        return []
    lines = [
        "### `zero-shot` NDCG@10 (new pool) on the launch benchmark's named splits, by precision",
        "",
        "| shop | items | fp32 (torch) | int8 (ONNX) | change |",
        "|---|---|---|---|---|",
    ]
    for name, d in rows:
        lines.append(
            f"| {name} | {d['n_items']:,} | {d['fp32']['ndcg@10']:.4f} | {d['int8']['ndcg@10']:.4f} | "
            f"{d['relative_change']:+.2%} |"
        )
    return [*lines, ""]


def _memory_lines(m: dict | None) -> list[str]:
    if m is None:
        return []
    lines = [
        f"### Memory: embedding a synthetic catalog (real titles mixed), no cache, each size in a fresh process; "
        f"estimate at {m['target_items']:,} items from a straight line through the samples",
        "",
        "| precision | peak RSS at " + " / ".join(f"{n:,}" for n in m["sizes"]) + " items | MiB per 1k items | "
        f"estimated peak RSS at {m['target_items']:,} | items/s | estimated time at {m['target_items']:,} |",
        "|---|---|---|---|---|---|",
    ]
    small = min(m["sizes"]) < MIN_EXTRAPOLATION_ITEMS
    for precision in m["precisions"]:
        r = m[precision]
        peaks = " / ".join(f"{x['peak_rss_mib']:.0f} MiB" for x in r["runs"])
        guess = (
            ("—", "—", "—")
            if small
            else (
                f"{r['mib_per_1k_items']:.1f}",
                f"{r['peak_rss_mib_at_target']:.0f} MiB",
                f"{r['hours_at_target']:.1f} h",
            )
        )
        lines.append(f"| {precision} | {peaks} | {guess[0]} | {guess[1]} | {r['items_per_s']:.1f} | {guess[2]} |")
    if small:
        lines += [
            "",
            f"Samples under {MIN_EXTRAPOLATION_ITEMS:,} items: their peaks may still grow with the longest texts they "
            "hold (one batch's working memory), so no estimate is drawn from them; rerun with the default sizes.",
        ]
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", action="append", choices=STAGES, help="run only these stages (repeatable)")
    parser.add_argument("--render-only", action="store_true", help="rebuild the docs section from saved JSON")
    parser.add_argument(
        "--memory-precision", action="append", choices=("int8", "fp32"), help="memory stage: these precisions only"
    )
    parser.add_argument("--memory-child", nargs=2, metavar=("PRECISION", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        run = {
            "speed": speed,
            "ndcg-amazon": lambda: ndcg("amazon"),
            "ndcg-cj": lambda: ndcg("completejourney"),
            "memory": lambda: memory(tuple(args.memory_precision or ("int8", "fp32"))),
        }
        for stage in args.stage or STAGES:
            print(f"== {stage}", flush=True)
            stage_start = time.perf_counter()
            doc = {"seconds": time.perf_counter() - stage_start, **run[stage]()}
            doc["seconds"] = time.perf_counter() - stage_start
            doc["command"] = "nice -n 10 python benchmarks/encoders.py " + " ".join(sys.argv[1:])
            doc["machine"] = machine_line(doc["seconds"] / 60)
            doc["load_average_at_end"] = os.getloadavg()[0]  # how busy the shared machine was
            atomic_write_text(OUT / f"{stage}.json", json.dumps(doc, indent=1, default=float))
    write_section("encoders", render())


if __name__ == "__main__":
    main()
