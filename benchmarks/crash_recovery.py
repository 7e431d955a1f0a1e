"""Crash check: loopback load with concurrent `/items` writes, `kill -9` mid-load, restart, acknowledged items back.

    .venv/bin/python benchmarks/crash_recovery.py                 # 60 s of load on the tiny shop (hashing encoder)
    .venv/bin/python benchmarks/crash_recovery.py --model-dir DIR  # any service folder (it is copied first)

The server runs with ZSREC_ANN_THRESHOLD=1, so the IVF index, its snapshot and the replay of writes made after
the snapshot are exercised too. Passes when no answered request got a 5xx, the store passes SQLite's
integrity check after the kill, and after the restart every item whose POST was answered 200 is served.
Exit code 0 on pass, 1 on fail; the figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from http_load import Stream, percentile, run_load  # noqa: E402
from serving import free_port, post, start_server, write_block  # noqa: E402


def tiny_folder(path: Path) -> Path:
    from shop_fixtures import tiny_shop

    from zsrec.encoders import load_encoder
    from zsrec.models.embedding_source import EmbeddingSource
    from zsrec.service.bundle import write_service_folder

    embeddings = EmbeddingSource(load_encoder("hashing-256"), cache_dir=path.parent / "cache")
    write_service_folder(tiny_shop(), path, embeddings)
    return path


def crash_check(
    folder: Path, *, duration: float, kill_at: float, rate: float, write_rate: float, log_dir: Path
) -> dict[str, object]:
    """Load `folder`'s server for `duration` s, kill -9 it at `kill_at` s, restart, and check the writes."""
    os.environ["ZSREC_ANN_THRESHOLD"] = "1"
    port = free_port()
    proc, _ = start_server(folder, port, log_dir / "crash-server.log")
    run = int(time.time())
    n_writes = int(write_rate * duration) + 10
    writes = [
        json.dumps(
            {
                "items": [
                    {
                        "item_id": f"crash-{run}-{i}-{j}",
                        "title": f"camping lantern model {i} {j}",
                        "category": "New > L",
                    }
                    for j in range(1 + i % 3)
                ]
            }
        ).encode()
        for i in range(n_writes)
    ]
    reads = [json.dumps({"user_id": f"u{i % 40}", "k": 10}).encode() for i in range(int(rate * duration) + 10)]
    streams = [
        Stream("recommend", "POST", "/recommend", rate, reads),
        Stream("items", "POST", "/items", write_rate, writes),
    ]
    killer = threading.Timer(kill_at, proc.kill)  # SIGKILL: no shutdown hook, no snapshot, no flush
    try:  # the timer starts with the streams, so `kill_at` and their failure times share one clock
        results = run_load("127.0.0.1", port, streams, duration, on_start=killer.start)
    finally:
        killer.cancel()
        proc.kill()
        proc.wait()
    acknowledged = [item["item_id"] for i in results["items"].acknowledged for item in json.loads(writes[i])["items"]]
    with sqlite3.connect(folder / "service.db") as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    start = time.perf_counter()
    proc, _ = start_server(folder, port, log_dir / "crash-server-restart.log")
    restart_s = time.perf_counter() - start
    missing = []
    try:
        for item_id in acknowledged:
            try:
                post(port, "/similar", {"item_id": item_id, "k": 1})
            except urllib.error.HTTPError as error:
                if error.code != 404:
                    raise
                missing.append(item_id)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    errors_5xx = sum(c for r in results.values() for s, c in r.statuses.items() if s >= 500)
    failed_before_kill = sum(1 for r in results.values() for t in r.failed_at_s if t < kill_at - 0.05)
    return {
        "passed": errors_5xx == 0
        and not failed_before_kill
        and integrity == "ok"
        and not missing
        and bool(acknowledged),
        "duration_s": duration,
        "killed_at_s": kill_at,
        "recommend_answered": len(results["recommend"].latencies_ms),
        "recommend_p99_ms": percentile(results["recommend"].latencies_ms, 99),
        "items_requests_acknowledged": len(results["items"].acknowledged),
        "items_acknowledged": len(acknowledged),
        "connection_errors_before_kill": failed_before_kill,
        "requests_cut_by_kill": sum(r.failed for r in results.values()) - failed_before_kill,
        "errors_5xx": errors_5xx,
        "integrity_check": integrity,
        "restart_s": restart_s,
        "missing_after_restart": missing[:10],
        "n_missing": len(missing),
    }


def report(result: dict[str, object], args: argparse.Namespace) -> str:
    verdict = "passed" if result["passed"] else "FAILED"
    return (
        f"### Crash check (`python benchmarks/crash_recovery.py {' '.join(sys.argv[1:])}`, "
        f"{time.strftime('%Y-%m-%d')})\n\n"
        f"{result['duration_s']:g} s of open-loop load (`/recommend` at {args.rate:g} req/s, `/items` at "
        f"{args.write_rate:g} req/s with 1–3 new items each) on the tiny shop served through the IVF index; "
        f"`kill -9` at {result['killed_at_s']:g} s. **{verdict}**: {result['recommend_answered']:,} recommendations "
        f"answered, {result['items_acknowledged']:,} items acknowledged, {result['errors_5xx']} server errors, "
        f"{result['connection_errors_before_kill']} connection errors before the kill, SQLite integrity check "
        f"`{result['integrity_check']}`, restart {result['restart_s']:.1f} s, {result['n_missing']} acknowledged "
        "items missing after the restart."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a service folder to copy and load (default: the tiny shop)")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--kill-at", type=float, help="seconds into the load (default: 1 s before its end)")
    parser.add_argument("--rate", type=float, default=100.0, help="/recommend requests per second")
    parser.add_argument("--write-rate", type=float, default=20.0, help="/items requests per second")
    parser.add_argument("--write", action="store_true", help="put the result into docs/benchmarks.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zsrec-crash-") as tmp:
        folder = Path(tmp) / "model"
        if args.model_dir:
            shutil.copytree(args.model_dir, folder)
        else:
            tiny_folder(folder)
        result = crash_check(
            folder,
            duration=args.duration,
            kill_at=args.kill_at if args.kill_at is not None else max(0.5, args.duration - 1),
            rate=args.rate,
            write_rate=args.write_rate,
            log_dir=Path(tmp),
        )
    print(json.dumps(result, indent=2))
    if args.write:
        write_block("serving-crash", report(result, args))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
