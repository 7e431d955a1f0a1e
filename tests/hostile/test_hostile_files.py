"""Hostile data and file systems: shops that cannot be recommended from, category paths that would load wrong,
unreadable inputs, unwritable outputs and a full disk. One line, exit code 2, nothing half-written."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple
from pathlib import Path

import hostile_helpers
import pandas as pd
import pytest
from hostile_helpers import assert_one_error, files_under, run_as_nobody, run_cli
from shop_fixtures import write_tiny_shop

import zsrec.training.artifacts as artifacts

# The suite's fixtures, shared through hostile_helpers: a conftest.py here would shadow the
# `from conftest import ...` of other test folders.
_cache_in_tmp = hostile_helpers._cache_in_tmp
shop_dir = hostile_helpers.shop_dir
as_nobody = hostile_helpers.as_nobody
shared_tmp = hostile_helpers.shared_tmp


def _shop(folder: Path, categories: list[str] | None = None, titles: str | None = None) -> Path:
    """The tiny shop, with its category paths or titles replaced."""
    write_tiny_shop(folder)
    items = pd.read_csv(folder / "items.csv", keep_default_na=False)
    if categories is not None:
        items["category"] = [categories[n % len(categories)] for n in range(len(items))]
    if titles is not None:
        items["title"] = titles
        items["description"] = ""
        items["brand"] = ""
    items.to_csv(folder / "items.csv", index=False)
    return folder


SLASHES = ["Outdoor/Tents", "Outdoor/Stoves", "Kitchen/Pans", "Kitchen/Knives"]
# (id, shop maker, command, what the one line must say)
DATA_CASES = [
    ("no-text-validate", lambda f: _shop(f, titles=""), "validate", "no item has any text"),
    ("no-text-train", lambda f: _shop(f, titles=""), "train", "no item has any text"),
    ("no-text-evaluate", lambda f: _shop(f, titles=""), "evaluate", "no item has any text"),
    ("empty-level", lambda f: _shop(f, ["Lab >  > Glass", "Lab > Metal"]), "validate", "row 1, column 'category'"),
    ("trailing-separator", lambda f: _shop(f, ["Lab > Glass", "Lab > "]), "validate", "row 2"),
    ("slash-separator", lambda f: _shop(f, SLASHES), "validate", "--category-separator '/'"),
    ("pipe-separator", lambda f: _shop(f, ["A|B", "A|C", "D|E"]), "train", "--category-separator '|'"),
    ("bare-angle-separator", lambda f: _shop(f, ["A>B", "A>C"]), "evaluate", "--category-separator '>'"),
]


def _argv(command: str, shop: Path, out: Path) -> list[object]:
    if command == "train":
        return ["train", shop, "--model", "tfidf", "--out", out]
    if command == "evaluate":
        return ["evaluate", shop, "--models", "random", "--bootstrap", "0", "--out", out / "r.json"]
    return ["validate", shop]


@pytest.mark.parametrize(("make", "command", "says"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_data_that_would_load_wrong_is_refused(tmp_path: Path, make, command: str, says: str, capsys) -> None:
    (tmp_path / "shop").mkdir()
    shop = make(tmp_path / "shop")
    out = tmp_path / "out"
    code, err = run_cli(_argv(command, shop, out), capsys)
    assert_one_error(code, err, contains=says, steps=True)
    assert not out.exists()


def test_the_hinted_separator_loads_the_levels(tmp_path: Path, capsys) -> None:
    (tmp_path / "shop").mkdir()
    shop = _shop(tmp_path / "shop", SLASHES)
    code, _ = run_cli(["validate", shop, "--json", "--category-separator", "/"], capsys)
    assert code == 0
    code, _ = run_cli(["validate", shop, "--category-separator", " > "], capsys)  # kept as one level on request
    assert code == 0


# -- the file system ---------------------------------------------------------------------------------------
def test_a_full_disk_at_save_leaves_nothing_behind(shop_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    def full(folder: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "manifest.json"))

    monkeypatch.setattr(artifacts, "write_manifest", full)
    out = tmp_path / "model"
    code, err = run_cli(["train", shop_dir, "--model", "tfidf", "--out", out], capsys)
    assert_one_error(code, err, contains="No space left on device", steps=True)
    assert not [p for p in files_under(tmp_path) if p != "cache" and not p.startswith("cache/")]  # no model, no .tmp


def test_too_little_free_space_is_refused_before_training(shop_dir: Path, tmp_path: Path, monkeypatch, capsys):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**20, 2**20))
    out = tmp_path / "model"
    code, err = run_cli(["train", shop_dir, "--model", "tfidf", "--out", out], capsys)
    line = assert_one_error(code, err, contains="MiB free")
    assert "training" not in err.replace(line, "") and not out.exists()


NOBODY_CASES = [
    ("unreadable-items-file", "items", "Permission denied"),
    ("unreadable-dataset-folder", "folder", "Permission denied"),
    ("train-out-in-read-only-folder", "train-out", "cannot write into"),
    ("evaluate-out-in-read-only-folder", "evaluate-out", "cannot write into"),
]


@pytest.mark.parametrize("what, says", [c[1:] for c in NOBODY_CASES], ids=[c[0] for c in NOBODY_CASES])
def test_another_user_gets_one_line(as_nobody, shared_tmp: Path, what: str, says: str) -> None:
    shop = write_tiny_shop(_mkdir(shared_tmp / "shop", 0o755))
    for path in shop.iterdir():
        path.chmod(0o644)
    locked = _mkdir(shared_tmp / "locked", 0o555)  # nobody may not write here
    cache = _mkdir(shared_tmp / "cache", 0o777)
    if what == "items":
        (shop / "items.csv").chmod(0o600)
        argv: list[object] = ["validate", shop]
    elif what == "folder":
        shop.chmod(0o711)  # enterable, not listable
        argv = ["validate", shop]
    elif what == "train-out":
        argv = ["train", shop, "--model", "tfidf", "--out", locked / "model"]
    else:
        argv = ["evaluate", shop, "--models", "random", "--out", locked / "r.json"]
    before = files_under(shared_tmp)
    done = run_as_nobody(argv, cache)
    assert_one_error(done.returncode, done.stderr, contains=says, steps=True)
    assert {p for p in files_under(shared_tmp) if not p.startswith("cache")} == {
        p for p in before if not p.startswith("cache")
    }


def _mkdir(path: Path, mode: int) -> Path:
    path.mkdir()
    path.chmod(mode)
    return path
