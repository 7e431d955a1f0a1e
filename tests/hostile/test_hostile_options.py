"""Hostile options: empty list elements, sizes beyond what the data (or the machine) can use, values of the
wrong kind. Each is refused before any work, in one line, exit code 2, leaving no file behind."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import hostile_helpers
import pytest
from hostile_helpers import PYTHON, assert_one_error, files_under, run_cli
from shop_fixtures import REPO

SPLIT = ["--level", "2", "--categories", "Outdoor > Sleeping Bags", "--encoder", "hashing"]

# (id, argv after the command and its dataset, what the one line must say); "{out}" is a fresh output path
EVALUATE_CASES = [
    ("k-trailing-empty", ["--k", "10,,"], "empty element"),
    ("k-leading-empty", ["--k", ",10"], "empty element"),
    ("k-zero", ["--k", "0"], "positive"),
    ("k-words", ["--k", "ten"], "positive"),
    ("k-negative", ["--k=-5"], "positive"),
    ("k-beyond-the-catalog", ["--k", "10,5000"], "exceeds the catalog's 14 items"),
    ("models-empty-element", ["--models", "random,,tfidf"], "empty element"),
    ("models-trailing-comma", ["--models", "random,"], "empty element"),
    ("categories-empty-element", ["--categories", "Outdoor > Tents;;Kitchen > Pans"], "empty element"),
    ("reveal-empty-element", ["--reveal", "0,,0.1"], "empty element"),
    ("bootstrap-huge", ["--bootstrap", "1000000000"], "n_bootstrap must be <="),
    ("bootstrap-negative", ["--bootstrap", "-1"], "n_bootstrap"),
    ("draws-zero", ["--draws", "0"], "draws"),
    ("draws-huge", ["--draws", "100000"], "draws"),
    ("pool-unknown", ["--pool", "some"], "pool"),
    ("out-is-a-folder", ["--out", "."], "is a folder"),
    ("category-separator-blank", ["--category-separator", " "], "separator"),
]

# The suite's fixtures, shared through hostile_helpers: a conftest.py here would shadow the
# `from conftest import ...` of other test folders.
_cache_in_tmp = hostile_helpers._cache_in_tmp
shop_dir = hostile_helpers.shop_dir


@pytest.mark.parametrize(("extra", "says"), [c[1:] for c in EVALUATE_CASES], ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_refuses(shop_dir: Path, tmp_path: Path, extra: list[str], says: str, capsys) -> None:
    argv = ["evaluate", shop_dir, "--models", "random", *SPLIT, *extra]
    if "--categories" in extra:  # the case's own held-out categories
        argv = ["evaluate", shop_dir, "--models", "random", "--level", "2", *extra]
    before = files_under(shop_dir)
    code, err = run_cli(argv, capsys)
    late = bool({"--category-separator", "10,5000"} & set(extra))  # refused once the dataset is read
    assert_one_error(code, err, contains=says, steps=late)
    assert files_under(shop_dir) == before and not list(tmp_path.iterdir())


OTHER_CASES = [
    ("robustness-attacks-empty-element", ["robustness", "{shop}", "--attacks", "typos,,noise"], "empty element"),
    ("robustness-bootstrap-huge", ["robustness", "{shop}", "--bootstrap", "1000000000"], "n_bootstrap must be <="),
    ("audience-items-empty-element", ["audience", "{shop}", "--items", "i1,,i2", "--encoder", "hashing"], "empty"),
    ("recommend-k-zero", ["recommend", "{shop}", "--user", "u1", "--k", "0"], "k must be >= 1"),
    ("similar-k-zero", ["similar", "{shop}", "--item", "i1", "--k", "0"], "k must be >= 1"),
    ("serve-port-zero", ["serve", "{out}", "--port", "0"], "port"),
    (
        "train-training-empty-element",
        ["train", "{shop}", "--model", "seed-linear", "--out", "{out}", "--training", "epochs=1,,lr=0.1"],
        "empty element",
    ),
    (
        "train-members-empty-element",
        ["train", "{shop}", "--model", "ensemble", "--out", "{out}", "--members", "tfidf,,random"],
        "empty element",
    ),
    ("train-out-is-a-file", ["train", "{shop}", "--model", "tfidf", "--out", "{shop}/items.csv"], "is a file"),
]


@pytest.mark.parametrize(("argv", "says"), [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_other_commands_refuse(shop_dir: Path, tmp_path: Path, argv: list[str], says: str, capsys) -> None:
    out = tmp_path / "out"
    argv = [a.replace("{shop}", str(shop_dir)).replace("{out}", str(out)) for a in argv]
    before = files_under(shop_dir)
    code, err = run_cli(argv, capsys)
    assert_one_error(code, err, contains=says)
    assert files_under(shop_dir) == before and not list(tmp_path.glob("*out*"))


TRAINING_SIZES = [
    ("batch-size-huge", "batch_size=100000000", "batch_size must be <="),
    ("max-pairs-huge", "max_pairs=1000000000000", "max_pairs must be <="),
    ("epochs-huge", "epochs=100000000", "epochs must be <="),
    ("threads-huge", "threads=100000", "threads must be <="),
]


@pytest.mark.parametrize(("training", "says"), [c[1:] for c in TRAINING_SIZES], ids=[c[0] for c in TRAINING_SIZES])
def test_training_sizes_are_bounded(shop_dir: Path, tmp_path: Path, training: str, says: str, capsys) -> None:
    out = tmp_path / "model"
    argv = ["train", shop_dir, "--model", "seed-linear", "--encoder", "hashing", "--out", out, "--training", training]
    code, err = run_cli(argv, capsys)
    assert_one_error(code, err, contains=says, steps=True)
    assert not out.exists() and not list(tmp_path.glob(".model.*"))


def test_a_huge_k_fails_fast_in_bounded_memory(shop_dir: Path, tmp_path: Path) -> None:
    """The reported case: an array of size k was built before k met the catalog (15 GB within 45 s)."""
    argv = ["evaluate", str(shop_dir), "--models", "random", "--bootstrap", "0", "--k", "1000000000", *SPLIT]
    script = (
        "import resource, sys\n"
        "from zsrec.cli import main\n"
        "try:\n    main(sys.argv[1:])\n"
        "finally:\n    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stdout)\n"
    )
    start = time.monotonic()
    done = subprocess.run(
        [PYTHON, "-c", script, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ZSREC_CACHE_DIR": str(tmp_path / "cache")},
    )
    seconds = time.monotonic() - start
    peak_kib = int(done.stdout.split()[-1])
    assert_one_error(done.returncode, done.stderr, contains="k must be at most")
    assert seconds < 60, seconds
    assert peak_kib < 2 * 2**20, f"peak RSS {peak_kib / 2**20:.2f} GiB"
