"""Longer schemathesis run against the service's OpenAPI document (the test suite runs a short one).

    .venv/bin/python benchmarks/fuzz.py                  # 50 examples per operation and mode: ~2,000 requests,
                                                         # 7.5 min on 2 busy shared cores
    .venv/bin/python benchmarks/fuzz.py --examples 300   # longer

Two services of the tiny test shop (hashing encoder), in process: one open with exact search, and one with API
keys for reads and writes over the IVF index, called with a key. Every operation gets generated requests, valid
and invalid; a run fails on a 5xx, a status the document does not list, a body that breaks its declared schema,
or invalid data accepted (tests/service/api_fuzzing.py says which checks run). Writes its section of
docs/benchmarks.md and docs/benchmarks/fuzz.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests" / "service"), str(REPO / "tests")]

from api_fuzzing import FuzzReport, fuzz_app  # noqa: E402
from common import machine_line, write_section  # noqa: E402
from conftest import make_folder  # noqa: E402

from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.service.app import ServiceConfig, create_app  # noqa: E402
from zsrec.service.index import IndexSettings  # noqa: E402
from zsrec.service.security import AccessSettings  # noqa: E402

KEY = "benchmark-fuzz-key-000001"
CONFIGURATIONS = {
    "open, exact search": (ServiceConfig(access_log=False), None),
    "keys for reads and writes, IVF index": (
        ServiceConfig(
            index=IndexSettings(ann_threshold=1),
            access=AccessSettings(api_keys=(KEY,), read_auth=True),
            access_log=False,
        ),
        {"Authorization": f"Bearer {KEY}"},
    ),
}


def run(name: str, examples: int, seed: int, folder: Path) -> dict[str, object]:
    config, headers = CONFIGURATIONS[name]
    app = create_app(folder, config)
    start = time.perf_counter()
    report: FuzzReport = fuzz_app(app, examples=examples, random_seed=seed, headers=headers)
    statuses: dict[str, int] = {}
    for family in app.state.metrics.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                status = sample.labels["status"]
                statuses[status] = statuses.get(status, 0) + int(sample.value)
    return {
        "configuration": name,
        "operations": len(report.operations),
        "requests": report.requests,
        "statuses": dict(sorted(statuses.items())),
        "failures": report.failures,
        "seconds": round(time.perf_counter() - start, 1),
    }


def render(results: list[dict[str, object]], examples: int, seed: int, minutes: float) -> str:
    rows = [
        f"| {r['configuration']} | {r['operations']} | {r['requests']:,} | "
        + ", ".join(f"{s}: {n:,}" for s, n in r["statuses"].items())  # type: ignore[union-attr]
        + f" | {len(r['failures'])} | {r['seconds']:.0f} s |"  # type: ignore[arg-type]
        for r in results
    ]
    failures = [f"- {r['configuration']}: {f.splitlines()[0]}" for r in results for f in r["failures"]]  # type: ignore[union-attr]
    return "\n".join(
        [
            "## HTTP API fuzzing (`benchmarks/fuzz.py`)",
            "",
            f"Command: `.venv/bin/python benchmarks/fuzz.py --examples {examples} --seed {seed}`. "
            + machine_line(minutes),
            "",
            "Schemathesis 4 against the OpenAPI document, in process, on the tiny test shop (hashing encoder): up to "
            f"{examples} generated requests per operation and mode (valid and invalid data). A failure is a 5xx, a "
            "status the document does not list (ST103), a body breaking its declared schema (ST108) or invalid "
            "data accepted (ST201), among schemathesis's other checks; only the check that every schema-valid "
            "request is accepted is left out (rules JSON Schema cannot state, such as strict integers refusing "
            "2.0). Statuses are counted by the service's own metrics.",
            "",
            "| service | operations | requests | answers by status | failures | time |",
            "|---|---|---|---|---|---|",
            *rows,
            *(["", "Failures:", *failures] if failures else []),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=50, help="examples per operation and generation mode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, name in enumerate(CONFIGURATIONS):
            folder = make_folder(Path(tmp) / f"model{n}", Path(tmp) / "cache")
            results.append(run(name, args.examples, args.seed, folder))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "failures"}), flush=True)
    minutes = (time.perf_counter() - start) / 60
    out = REPO / "docs" / "benchmarks" / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps({"examples": args.examples, "seed": args.seed, "results": results}, indent=2))
    write_section("fuzz", render(results, args.examples, args.seed, minutes))
    failed = sum(len(r["failures"]) for r in results)  # type: ignore[arg-type, misc]
    print(f"{failed} failures in {minutes:.1f} min")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
