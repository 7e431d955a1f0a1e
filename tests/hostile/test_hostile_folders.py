"""Damaged model and service folders: `zsrec check` (and the commands that load them) say which file is wrong
in one line, exit code 2; a damaged folder never loads silently."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import hostile_helpers
import numpy as np
import pytest
from hostile_helpers import assert_one_error, files_under, run_cli

from zsrec.manifest import MANIFEST_FILE, write_manifest

Damage = Callable[[Path], None]

# The suite's fixtures, shared through hostile_helpers: a conftest.py here would shadow the
# `from conftest import ...` of other test folders.
_cache_in_tmp = hostile_helpers._cache_in_tmp
shop_dir = hostile_helpers.shop_dir
trained_model = hostile_helpers.trained_model
trained_head = hostile_helpers.trained_head


def _truncate(name: str) -> Damage:
    def damage(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])

    return damage


def _random_bytes(name: str, relist: bool = False) -> Damage:
    def damage(folder: Path) -> None:
        (folder / name).write_bytes(np.random.default_rng(0).bytes(2048))
        if relist:
            write_manifest(folder)

    return damage


def _save_npy(name: str, make: Callable[[np.ndarray], np.ndarray], relist: bool = True) -> Damage:
    """Replace an array by `make(old)`, re-listed in the manifest when `relist`: the value checks must catch
    what a consistent manifest cannot."""

    def damage(folder: Path) -> None:
        old = np.load(folder / name)
        np.save(folder / name, make(old), allow_pickle=True)
        if relist:
            write_manifest(folder)

    return damage


def _nan_rows(old: np.ndarray) -> np.ndarray:
    new = old.copy()
    new[0] = np.nan
    return new


def _infinite(old: np.ndarray) -> np.ndarray:
    return np.full_like(old, np.inf)


def _objects(old: np.ndarray) -> np.ndarray:
    return np.array([{"x": 1}], dtype=object)


def _edit_json(name: str, edit: Callable[[object], object], relist: bool = True) -> Damage:
    def damage(folder: Path) -> None:
        (folder / name).write_text(json.dumps(edit(json.loads((folder / name).read_text()))))
        if relist:
            write_manifest(folder)

    return damage


def _write_text(name: str, text: str, relist: bool = True) -> Damage:
    def damage(folder: Path) -> None:
        (folder / name).write_text(text)
        if relist:
            write_manifest(folder)

    return damage


def _unlink(name: str) -> Damage:
    return lambda folder: (folder / name).unlink()


def _with_settings_field(config: object) -> object:
    assert isinstance(config, dict)
    config["settings"]["no_such_field"] = 1
    return config


def _sql(statement: str) -> Damage:
    def damage(folder: Path) -> None:
        with sqlite3.connect(folder / "service.db") as conn:
            conn.execute(statement)

    return damage


def _nan_vector_in_store(folder: Path) -> None:
    with sqlite3.connect(folder / "service.db") as conn:
        (blob,) = conn.execute("SELECT vector FROM items LIMIT 1").fetchone()
        bad = np.full(len(blob) // 4, np.nan, dtype="<f4").tobytes()
        conn.execute("UPDATE items SET vector = ? WHERE row = (SELECT MIN(row) FROM items)", (bad,))


def _no_manifest_and(damage: Damage) -> Damage:
    def both(folder: Path) -> None:
        (folder / MANIFEST_FILE).unlink()
        damage(folder)

    return both


# (id, damage, what the one line must name)
MODEL_CASES: list[tuple[str, Damage, str]] = [
    ("truncated-npy", _truncate("item_vectors_.npy"), "item_vectors_.npy"),
    ("random-bytes-npy", _random_bytes("item_vectors_.npy"), "item_vectors_.npy"),
    ("wrong-shape-npy", _save_npy("item_vectors_.npy", lambda a: a[:, :5], relist=False), "item_vectors_.npy"),
    ("wrong-rows-npy-relisted", _save_npy("item_vectors_.npy", lambda a: a[:3]), "rows for a catalog"),
    ("nan-item-vectors", _save_npy("item_vectors_.npy", _nan_rows, relist=False), "item_vectors_.npy"),
    ("nan-item-vectors-relisted", _save_npy("item_vectors_.npy", _nan_rows), "NaN"),
    ("inf-category-vectors-relisted", _save_npy("category_vectors_.npy", _infinite), "category_vectors_"),
    ("history-index-out-of-range", _save_npy("history_items_.npy", lambda a: a + 10_000), "out of range"),
    ("history-lengths-disagree", _save_npy("history_lengths_.npy", lambda a: a * 2), "history_items_.npy"),
    ("object-array-npy", _no_manifest_and(_save_npy("n_items_.npy", _objects, relist=False)), "pickle"),
    ("deleted-npy", _unlink("profile_vectors_.npy"), "profile_vectors_.npy"),
    ("unknown-settings-field", _edit_json("config.json", _with_settings_field), "no_such_field"),
    ("config-not-json", _write_text("config.json", "{not json"), "config.json"),
    ("training-json-nonsense", _write_text("training.json", "[1, 2, 3]"), "training.json"),
    ("training-json-wrong-types", _edit_json("training.json", lambda r: {**r, "dataset": 7}), "training.json"),
    ("service-json-nonsense", _write_text("service.json", '{"format": 1, "dim": "x"}'), "service.json"),
    ("service-db-random", _random_bytes("service.db"), "service.db"),
    ("service-db-deleted", _unlink("service.db"), "service.db"),
    ("service-db-truncated", _truncate("service.db"), "service.db"),
    ("service-db-dropped-table", _sql("DROP TABLE events"), "service.db"),
    ("service-db-nan-vector", _nan_vector_in_store, "damaged vector"),
    ("manifest-not-json", _write_text(MANIFEST_FILE, "{oops", relist=False), MANIFEST_FILE),
    ("manifest-escapes-folder", _write_text(MANIFEST_FILE, '{"format": 1, "files": {"../x": {}}}', False), "outside"),
    ("file-not-in-manifest", _write_text("extra.npy", "x", relist=False), "not listed"),
    ("legacy-random-npy", _no_manifest_and(_random_bytes("item_vectors_.npy")), "not a .npy array file"),
    ("legacy-truncated-npy", _no_manifest_and(_truncate("history_items_.npy")), "truncated"),
]


@pytest.fixture()
def model_copy(trained_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_model, tmp_path / "model"))


@pytest.mark.parametrize(("damage", "names"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_check_names_the_damaged_file(model_copy: Path, damage: Damage, names: str, capsys) -> None:
    damage(model_copy)
    before = files_under(model_copy)
    code, err = run_cli(["check", model_copy], capsys)
    assert_one_error(code, err, contains=names, absent="pickled data")
    assert files_under(model_copy) == before  # checking writes nothing


def test_an_intact_folder_checks_ok(model_copy: Path, capsys) -> None:
    code, err = run_cli(["check", model_copy], capsys)
    assert code == 0, err
    assert "items" in err and "service store" in err
    from zsrec.cli import main

    with pytest.raises(SystemExit) as info:
        main(["check", str(model_copy), "--json"])
    assert info.value.code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and any("service store" in line for line in document["checked"])


def test_a_folder_from_before_manifests_loads_with_a_warning(model_copy: Path, capsys) -> None:
    (model_copy / MANIFEST_FILE).unlink()
    code, err = run_cli(["check", model_copy], capsys)
    assert code == 0
    assert "warning" in err.lower() and MANIFEST_FILE in err


HEAD_CASES: list[tuple[str, Damage, str]] = [
    ("random-safetensors", _random_bytes("head.safetensors", relist=True), "head"),
    ("truncated-safetensors", _truncate("head.safetensors"), "head.safetensors"),
    ("truncated-safetensors-relisted", lambda f: (_truncate("head.safetensors")(f), write_manifest(f)), "damaged"),
    ("training-log-not-json", _write_text("training_log.json", "]"), "damaged"),
]


@pytest.mark.parametrize(("damage", "names"), [c[1:] for c in HEAD_CASES], ids=[c[0] for c in HEAD_CASES])
def test_a_damaged_head_is_one_line(trained_head: Path, tmp_path: Path, damage: Damage, names: str, capsys) -> None:
    folder = Path(shutil.copytree(trained_head, tmp_path / "head"))
    damage(folder)
    code, err = run_cli(["check", folder], capsys)
    assert_one_error(code, err, contains=names)


@pytest.mark.parametrize("command", ["evaluate", "serve"])
def test_commands_that_load_a_folder_refuse_it_too(model_copy: Path, shop_dir: Path, command: str, capsys) -> None:
    if command == "evaluate":
        _save_npy("item_vectors_.npy", _nan_rows)(model_copy)
        argv = ["evaluate", shop_dir, "--models", model_copy, "--bootstrap", "0", "--encoder", "hashing"]
        argv += ["--level", "2", "--categories", "Outdoor > Sleeping Bags"]
        expected = "NaN"
    else:
        (model_copy / "service.db").unlink()
        argv, expected = ["serve", model_copy], "service.db"
    code, err = run_cli(argv, capsys)
    assert_one_error(code, err, contains=expected, steps=command == "evaluate")


@pytest.mark.parametrize("target", ["missing", "plain-folder"])
def test_check_refuses_what_is_not_a_saved_folder(tmp_path: Path, target: str, capsys) -> None:
    path = tmp_path / target
    if target == "plain-folder":
        path.mkdir()
    code, err = run_cli(["check", path], capsys)
    assert_one_error(code, err, contains=str(path))
