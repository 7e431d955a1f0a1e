"""Scale benchmark: batch export, scoring a million items in bounded memory, a memory-mapped vector store, Spark.

    make bench-scale         # = .venv/bin/python benchmarks/scale.py  (every stage, then the docs section)
    .venv/bin/python benchmarks/scale.py --stage score-1m --users 10000   # some stages only
    .venv/bin/python benchmarks/scale.py --render-only                    # docs from saved JSON

Each stage runs in its own process (so that its peak memory is its own) and writes
docs/benchmarks/scale/STAGE.json:
- batch-cj: `zsrec train` (zero-shot, minilm) on Complete Journey's demo reduction, then
  `zsrec recommend MODEL --users all --k 50 --out recs.parquet` as its own process (users/s, peak RSS), and a check
  that the parquet's rows equal `--user U --json` answers (`zsrec.batch.user_ranking`, and the command itself for
  a few) on a seeded sample of users;
- store-1m: a 1M-vector store written chunk by chunk into a memory-mapped .npy and read back through
  `zsrec.io.load_npy`, with the process's peak RSS and private (anonymous) memory;
- score-1m: a model folder over those 1M vectors (zero-shot-mean) with --folder-users users (default 100,000),
  and `zsrec.batch.export_recommendations` for the first --users of them (default all), top 50, streamed in
  chunks of --memory-mb (default 1024 MiB) of scores, in its own process: time and peak RSS;
- spark-score: the batch-cj export on Spark local[1] and local[2] (users/s after a warm-up job);
- spark-embed: `zsrec.scale.spark.spark_embed` with minilm (fp32) on local[1] and local[2] (texts/s after a
  warm-up job). The encoder-speed stages (ONNX fp32/int8 against sentence-transformers) are added with the ONNX
  encoders.

The 1M vectors are real MiniLM title embeddings recombined as in benchmarks/serving.py: item j is
normalise(a·e_p + (1 − a)·e_q + ε) for two random base items (Amazon Scientific plus the demo's Complete
Journey products, from the embedding cache); users hold 5–30 items from one or two base categories.
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

import numpy as np
import pandas as pd
from scipy import sparse

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import REPO, machine_line, write_section  # noqa: E402

OUT = REPO / "docs" / "benchmarks" / "scale"
WORK = Path(os.environ.get("ZSREC_SCALE_WORK", Path(tempfile.gettempdir()) / "zsrec-scale-bench"))
STAGES = ("batch-cj", "store-1m", "score-1m", "spark-score", "spark-embed")
N_ITEMS = 1_000_000
K = 50


# -- memory ----------------------------------------------------------------------------------------------------
def memory() -> dict[str, float]:
    """This process's peak RSS, current RSS and private (anonymous) RSS, in MiB (from /proc/self/status)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return {"peak_rss_mib": fields["VmHWM"], "rss_mib": fields["VmRSS"], "anon_mib": fields["RssAnon"]}


def run_child(args: list[str]) -> tuple[float, float, str]:
    """Run a command; (wall seconds, its peak RSS in MiB, its stderr)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(args, check=True, env=child_env(), stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024, done.stderr


def same_ranking(a: list[str], a_scores: np.ndarray, b: list[str], b_scores: np.ndarray, tol: float = 1e-5) -> bool:
    """Equal rankings up to ties: the same scores rank by rank, and the same items within each group of scores
    equal to `tol` (items with identical text tie; float rounding, which differs between a chunk of users and
    one user, orders them either way). The group cut by k may hold different members."""
    if len(a) != len(b) or not np.allclose(a_scores, b_scores, rtol=0, atol=tol):
        return False
    groups = np.split(np.arange(len(a)), np.flatnonzero(np.abs(np.diff(a_scores)) > tol) + 1)
    whole = [g for g in groups if len(g) and g[-1] != len(a) - 1]  # the last group may be cut by k
    return all(sorted(a[i] for i in g) == sorted(b[i] for i in g) for g in whole)


def child_env() -> dict[str, str]:
    """The environment of child processes: this checkout's zsrec first."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def zsrec_cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from zsrec.cli import main; main()", *args]


# -- batch export on Complete Journey --------------------------------------------------------------------------
def cj_model(model: str) -> tuple[Path, float]:
    """The zero-shot folder trained on the demo reduction (reused when present); (folder, training seconds)."""
    from zsrec.data import load_dataset
    from zsrec.demo import keep_popular_items
    from zsrec.train import train_model

    folder = WORK / f"cj-{model}"
    if (folder / "config.json").is_file():
        return folder, float("nan")
    start = time.perf_counter()
    train_model(keep_popular_items(load_dataset("completejourney"), 30), model, encoder="minilm", out=folder)
    return folder, time.perf_counter() - start


def batch_cj(args: argparse.Namespace) -> dict:
    from zsrec.batch import read_rows, user_ranking
    from zsrec.models.registry import load_model

    folder, train_s = cj_model(args.model)
    out = WORK / "cj-recs.parquet"
    seconds, peak, log = run_child(
        zsrec_cli("recommend", str(folder), "--users", "all", "--k", str(K), "--out", str(out))
    )
    reported = [line for line in log.splitlines() if line.startswith("wrote ")]
    rows = read_rows(out)
    users = load_model(folder).ids_.users
    sample = np.random.default_rng(0).choice(users, size=min(args.sample, len(users)), replace=False)
    agree = exact = 0
    for n, user in enumerate(sample):
        if n < 3:  # the command itself, as a user would run it
            done = subprocess.run(
                zsrec_cli("recommend", str(folder), "--user", str(user), "--k", str(K), "--json"),
                check=True,
                capture_output=True,
                text=True,
                env=child_env(),
            )
            answer = json.loads(done.stdout)
        else:
            answer = user_ranking(folder, str(user), k=K)
        mine = rows[rows["user_id"] == str(user)]
        ids, scores = [i["item_id"] for i in answer["items"]], np.asarray([i["score"] for i in answer["items"]])
        agree += int(same_ranking(ids, scores, mine["item_id"].tolist(), mine["score"].to_numpy()))
        exact += int(ids == mine["item_id"].tolist())
    return {
        "model": args.model,
        "users": len(users),
        "items": int(load_model(folder).n_items_),
        "rows": len(rows),
        "train_s": train_s,
        "export_s": seconds,
        "users_per_s": len(users) / seconds,
        "export_peak_rss_mib": peak,
        "sample": len(sample),
        "sample_agree": agree,
        "sample_same_order": exact,
        "command_log": reported[-1] if reported else "",
        "cli_calls_in_sample": min(3, len(sample)),
    }


# -- one million vectors ---------------------------------------------------------------------------------------
def base_vectors() -> tuple[np.ndarray, list[str]]:
    """Real MiniLM item embeddings (from the cache) and their top-two-level categories."""
    from zsrec.data import load_dataset
    from zsrec.demo import keep_popular_items
    from zsrec.encoders.templates import ItemTextTemplate
    from zsrec.models.embedding_source import EmbeddingSource

    source = EmbeddingSource("minilm")
    parts = [keep_popular_items(load_dataset("completejourney"), 30)]
    amazon = REPO.parent / "shared" / "data" / "amazon-scientific"
    if (amazon / "Scientific.item.json").exists():
        parts.insert(0, load_dataset(f"amazon-lcrec:{amazon}"))
    vectors = np.vstack([source.items(d.items, ItemTextTemplate()) for d in parts]).astype(np.float32)
    cats = [c or "Other" for d in parts for c in d.category_at(2).tolist()]
    return vectors, cats


def write_store(path: Path, n: int, seed: int = 0) -> np.ndarray:
    """Recombined vectors written 100k at a time into a memory-mapped .npy; returns each item's base item."""
    from numpy.lib.format import open_memmap

    base, _ = base_vectors()
    rng = np.random.default_rng(seed)
    p, q = rng.integers(0, len(base), n), rng.integers(0, len(base), n)
    tmp = path.with_suffix(".tmp.npy")
    store = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, base.shape[1]))
    for start in range(0, n, 100_000):
        s = slice(start, start + 100_000)
        a = rng.uniform(0.6, 0.9, len(p[s])).astype(np.float32)[:, None]
        v = a * base[p[s]] + (1 - a) * base[q[s]] + rng.normal(0, 0.01, (len(p[s]), base.shape[1])).astype(np.float32)
        store[s] = v / np.linalg.norm(v, axis=1, keepdims=True)
    store.flush()
    del store
    os.replace(tmp, path)
    return p


def store_1m(args: argparse.Namespace) -> dict:
    from zsrec.io import is_mapped, load_npy

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "store-1m.npy"
    start = time.perf_counter()
    write_store(path, N_ITEMS)
    build_s = time.perf_counter() - start
    after_build = memory()
    start = time.perf_counter()
    vectors = load_npy(path)
    norms = np.concatenate([np.linalg.norm(vectors[s : s + 100_000], axis=1) for s in range(0, N_ITEMS, 100_000)])
    read_s = time.perf_counter() - start
    return {
        "items": N_ITEMS,
        "dim": int(vectors.shape[1]),
        "file_mib": path.stat().st_size / 2**20,
        "mapped": is_mapped(vectors),
        "build_s": build_s,
        "read_s": read_s,
        "norm_min": float(norms.min()),
        "build_peak_rss_mib": after_build["peak_rss_mib"],
        "after_build": after_build,
        "after_read": memory(),
    }


def score_folder(n_users: int, seed: int = 0) -> Path:
    """A zero-shot-mean model folder over the 1M store (moved in, not copied) and `n_users` users."""
    from zsrec.io import atomic_write_text, load_npy, save_arrays
    from zsrec.models.ids import CatalogIds
    from zsrec.models.zero_shot import ZeroShotRecommender, preset

    folder = WORK / f"model-1m-{n_users}"
    if (folder / "config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    origin = write_store(folder / "item_vectors_.npy", N_ITEMS, seed)
    vectors = load_npy(folder / "item_vectors_.npy")
    _, cats = base_vectors()
    codes, names = pd.factorize(np.asarray(cats, dtype=object)[origin])
    by_cat = [rows for rows in (np.flatnonzero(codes == c) for c in range(len(names))) if len(rows) >= 30]
    rng = np.random.default_rng(seed + 1)
    histories = []
    for _ in range(n_users):
        chosen = rng.choice(len(by_cat), size=int(rng.integers(1, 3)), replace=False)
        pool = np.concatenate([by_cat[c] for c in chosen])
        histories.append(np.sort(rng.choice(pool, size=min(len(pool), int(rng.integers(5, 31))), replace=False)))
    centroids = np.zeros((len(names), vectors.shape[1]), dtype=np.float32)
    for start in range(0, N_ITEMS, 100_000):
        block = codes[start : start + 100_000]
        onehot = sparse.csr_matrix(
            (np.ones(len(block), dtype=np.float32), (block, np.arange(len(block)))), shape=(len(names), len(block))
        )
        centroids += onehot @ vectors[start : start + 100_000]
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    save_arrays(
        folder,
        {
            "profile_vectors_": np.zeros((0, vectors.shape[1]), dtype=np.float32),
            "category_index_": codes.astype(np.int64),
            "category_vectors_": centroids,
            "n_items_": np.asarray(N_ITEMS),
            "n_users_": np.asarray(n_users),
            "history_lengths_": np.asarray([len(h) for h in histories], dtype=np.int64),
            "history_items_": np.concatenate(histories).astype(np.int64),
        },
    )
    CatalogIds(
        items=np.asarray([f"s{j}" for j in range(N_ITEMS)], dtype=object),
        users=np.asarray([f"user{u}" for u in range(n_users)], dtype=object),
        categories=np.asarray(names, dtype=object)[codes],
    ).write(folder)
    model = ZeroShotRecommender(preset("zero-shot-mean"))
    model.name = "zero-shot-mean"
    atomic_write_text(folder / "config.json", json.dumps(model.get_config(), indent=2))
    return folder


def score_1m(args: argparse.Namespace) -> dict:
    from zsrec.batch import BatchSettings, export_recommendations

    folder = score_folder(args.folder_users)
    before = memory()
    out = WORK / "recs-1m.parquet"
    settings = BatchSettings(k=K, explain=False, memory_mb=args.memory_mb)
    result = export_recommendations(folder, out=out, users=[f"user{u}" for u in range(args.users)], settings=settings)
    return {
        "items": N_ITEMS,
        "users": result.users,
        "rows": result.rows,
        "k": K,
        "seconds": result.seconds,
        "users_per_s": result.users_per_second,
        "chunk_users": settings.chunk_users(N_ITEMS),
        "memory_mb": args.memory_mb,
        "before": before,
        "after": memory(),
    }


# -- Spark -----------------------------------------------------------------------------------------------------
def spark_score(args: argparse.Namespace) -> dict:
    from zsrec.batch import BatchSettings
    from zsrec.models.registry import load_model
    from zsrec.scale.spark import spark_recommend, spark_session

    folder, _ = cj_model(args.model)
    users = [str(u) for u in load_model(folder).ids_.users][: args.spark_users or None]
    runs = {}
    for master in ("local[1]", "local[2]"):
        with spark_session(master) as spark:
            settings = BatchSettings(k=K)
            spark_recommend(folder, out=WORK / "spark-warm.parquet", users=users[:200], settings=settings, spark=spark)
            result = spark_recommend(
                folder, out=WORK / "spark-recs.parquet", users=users, settings=settings, spark=spark
            )
        runs[master] = {"seconds": result.seconds, "users_per_s": result.users_per_second, "rows": result.rows}
    return {"users": len(users), "runs": runs}


def spark_embed_stage(args: argparse.Namespace) -> dict:
    from zsrec.data import load_dataset
    from zsrec.demo import keep_popular_items
    from zsrec.encoders.templates import ItemTextTemplate
    from zsrec.scale.spark import spark_embed, spark_session

    data = keep_popular_items(load_dataset("completejourney"), 30)
    texts = ItemTextTemplate().render(data.items)
    items = pd.DataFrame({"item_id": data.items["item_id"].astype(str), "text": texts})[: args.texts]
    runs = {}
    for master in ("local[1]", "local[2]"):
        with spark_session(master) as spark:
            spark_embed(items[:64], "minilm", spark=spark)  # warm-up: each worker loads the encoder
            start = time.perf_counter()
            spark_embed(items, "minilm", spark=spark)
            seconds = time.perf_counter() - start
        runs[master] = {"seconds": seconds, "texts_per_s": len(items) / seconds}
    return {"texts": len(items), "encoder": "minilm", "precision": "fp32", "runs": runs}


RUNNERS = {
    "batch-cj": batch_cj,
    "store-1m": store_1m,
    "score-1m": score_1m,
    "spark-score": spark_score,
    "spark-embed": spark_embed_stage,
}


# -- docs ------------------------------------------------------------------------------------------------------
def load(stage: str) -> dict | None:
    path = OUT / f"{stage}.json"
    return json.loads(path.read_text()) if path.exists() else None


def render() -> str:
    lines = ["## Scale: batch export, a million items in bounded memory, Spark", ""]
    lines += [
        "Written by `benchmarks/scale.py` (`make bench-scale`); every stage runs in its own process, so its peak "
        "RSS (VmHWM) is its own. The machine is shared with other jobs: compare figures within one run only.",
        "",
    ]
    b = load("batch-cj")
    if b:
        lines += [
            f"**Batch export, Complete Journey (demo reduction).** `zsrec recommend MODEL --users all --k {K} --out "
            f"recs.parquet` on a `{b['model']}` folder (minilm): {b['users']:,} users × {b['items']:,} items, "
            f"{b['rows']:,} rows in {b['export_s']:.1f} s including start-up and loading "
            f"(**{b['users_per_s']:,.0f} users/s**), peak RSS **{b['export_peak_rss_mib']:,.0f} MiB**. "
            + (f"The command's own count, after start-up: `{b['command_log']}`. " if b.get("command_log") else "")
            + f"Rows equal to `--user U --json` answers for **{b['sample_agree']} of {b['sample']}** sampled users "
            f"({b['cli_calls_in_sample']} of them through the command itself): the same scores rank by rank "
            "(to 1e-5) and the same items within each group of equal scores"
            + (
                f"; in exactly the same order for {b['sample_same_order']}, the others differ only in how items "
                "with equal scores (products with identical text) are ordered, which float rounding decides "
                "differently for a chunk of users and for one user."
                if "sample_same_order" in b
                else "."
            ),
            "",
        ]
    s = load("store-1m")
    if s:
        a = s["after_read"]
        lines += [
            f"**Memory-mapped store.** {s['items']:,} × {s['dim']} float32 ({s['file_mib']:,.0f} MiB) written 100k "
            f"rows at a time into a mapped .npy in {s['build_s']:.0f} s (peak RSS {s['build_peak_rss_mib']:,.0f} "
            "MiB, mostly the file's own written pages"
            + (f"; private memory then {s['after_build']['anon_mib']:,.0f} MiB" if "after_build" in s else "")
            + "), then read through "
            f"`zsrec.io.load_npy` (mapped: {s['mapped']}) in {s['read_s']:.1f} s: RSS then "
            f"{a['rss_mib']:,.0f} MiB, of which private (anonymous) {a['anon_mib']:,.0f} MiB (the base embeddings "
            "and datasets the recombination read); the rest are the file's pages in the page cache, shared and "
            "reclaimable, not a copy.",
            "",
        ]
    m = load("score-1m")
    if m:
        per_100k = 100_000 / m["users_per_s"] / 60
        lines += [
            f"**Scoring against 1M items.** `export_recommendations` on a zero-shot-mean folder over 1M recombined "
            f"vectors: {m['users']:,} users, top {m['k']}, streamed {m['chunk_users']} users a chunk "
            f"(`memory_mb={m['memory_mb']}`): "
            f"{m['seconds']:.0f} s (**{m['users_per_s']:.1f} users/s**), peak RSS "
            f"**{m['after']['peak_rss_mib']:,.0f} MiB** (private {m['after']['anon_mib']:,.0f} MiB at the end)."
            + (
                f" At this rate 100,000 users take about {per_100k:.0f} min; memory does not grow with the number "
                "of users (one chunk at a time)."
                if m["users"] < 100_000
                else ""
            ),
            "",
        ]
    rows = []
    sc, se = load("spark-score"), load("spark-embed")
    if sc:
        r1, r2 = sc["runs"]["local[1]"], sc["runs"]["local[2]"]
        rows.append(
            f"| scoring {sc['users']:,} users (batch-cj folder, top {K}), users/s | {r1['users_per_s']:,.0f} | "
            f"{r2['users_per_s']:,.0f} | {r2['users_per_s'] / r1['users_per_s']:.2f}× |"
        )
    if se:
        r1, r2 = se["runs"]["local[1]"], se["runs"]["local[2]"]
        rows.append(
            f"| embedding {se['texts']:,} texts ({se['encoder']} {se['precision']}), texts/s | "
            f"{r1['texts_per_s']:,.1f} | {r2['texts_per_s']:,.1f} | {r2['texts_per_s'] / r1['texts_per_s']:.2f}× |"
        )
    if rows:
        lines += [
            "**Spark** (pyspark 4.3, after a warm-up job in the same session; session start-up not counted):",
            "",
            "| job | local[1] | local[2] | speed-up |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    lines += [
        "Encoder speed (sentence-transformers against zsrec torch, ONNX fp32 and int8, `--no-cache`) and NDCG per "
        "precision: `benchmarks/encoders.py`, its own section.",
        "",
    ]
    loads = [d["load_avg_1m"] for d in (load(stage) for stage in STAGES) if d and "load_avg_1m" in d]
    if loads:
        lines += [
            f"Load average (1 min) at the end of the stages: {min(loads):.1f}–{max(loads):.1f} on 2 cores: other "
            "jobs shared the machine, so the speeds here are low bounds.",
            "",
        ]
    lines += [machine_line(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", action="append", choices=STAGES, help="run only these stages (repeatable)")
    parser.add_argument("--users", type=int, default=100_000, help="users scored against 1M items (score-1m)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="score budget of one chunk (score-1m)")
    parser.add_argument("--folder-users", type=int, default=100_000, help="users in the 1M model folder (score-1m)")
    parser.add_argument("--model", default="zero-shot", help="model trained for batch-cj and spark-score")
    parser.add_argument("--sample", type=int, default=20, help="users checked against --user answers (batch-cj)")
    parser.add_argument("--spark-users", type=int, default=0, help="users scored per Spark run; 0 = all (spark-score)")
    parser.add_argument("--texts", type=int, default=2000, help="texts embedded per Spark run (spark-embed)")
    parser.add_argument("--render-only", action="store_true", help="rebuild the docs section from saved JSON")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # a stage's own process
    args = parser.parse_args()
    if not args.render_only:
        OUT.mkdir(parents=True, exist_ok=True)
        WORK.mkdir(parents=True, exist_ok=True)
        for stage in args.stage or STAGES:
            if args.in_process:
                document = RUNNERS[stage](args) | {"machine": machine_line(), "load_avg_1m": os.getloadavg()[0]}
                (OUT / f"{stage}.json").write_text(json.dumps(document, indent=2) + "\n")
                print(json.dumps(document, indent=2), flush=True)
                continue
            child = [sys.executable, __file__, "--in-process", "--stage", stage, "--users", str(args.users)]
            child += ["--model", args.model, "--sample", str(args.sample), "--texts", str(args.texts)]
            child += ["--memory-mb", str(args.memory_mb), "--folder-users", str(args.folder_users)]
            child += ["--spark-users", str(args.spark_users)]
            subprocess.run(child, check=True, env=child_env())
    if not args.in_process:
        write_section("scale", render())


if __name__ == "__main__":
    main()
