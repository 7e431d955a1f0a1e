"""Shared pieces of the hostile-input suite: a tiny shop, trained folders to damage, and the one assertion
every case makes (exit code 2, one `error:` line on stderr, no traceback, nothing left behind).

A module of its own (not conftest.py, whose name other test folders share) so that tests can import it; the
fixtures are bound into each test module by name (see the top of each)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from shop_fixtures import REPO, write_tiny_shop

from zsrec.train import train_model

PYTHON = sys.executable
NOBODY = 65534


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_shop(tmp_path_factory.mktemp("hostile-shop"))


def _trained(tmp_path_factory: pytest.TempPathFactory, shop_dir: Path, name: str, **kw: object) -> Path:
    root = tmp_path_factory.mktemp(f"hostile-{name}")
    with pytest.MonkeyPatch.context() as patch:  # keep the embedding cache out of the user's home
        patch.setenv("ZSREC_CACHE_DIR", str(root / "cache"))
        out = root / "model"
        train_model(str(shop_dir), name, out=out, encoder="hashing", **kw)
    return out


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, shop_dir: Path) -> Path:
    """A zero-shot model folder with its service files (never damaged itself: tests damage copies)."""
    return _trained(tmp_path_factory, shop_dir, "zero-shot-mean")


@pytest.fixture(scope="session")
def trained_head(tmp_path_factory: pytest.TempPathFactory, shop_dir: Path) -> Path:
    """A seed-linear head (its weights in head.safetensors), one short epoch."""
    return _trained(tmp_path_factory, shop_dir, "seed-linear", training={"epochs": 1})


def run_cli(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`zsrec ARGV` in this process (as the console script runs it): exit code and stderr."""
    from zsrec.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return int(info.value.code or 0), capsys.readouterr().err


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def assert_one_error(code: int, err: str, *, contains: str = "", absent: str = "", steps: bool = False) -> str:
    """Exit code 2 and one stderr line, `error: ...`, with no traceback; returns the line.

    With `steps`, the progress lines a command printed before it failed ("loading ...") may precede it; the
    error is still exactly one line, and the last."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err and not any(line.startswith("  File ") for line in lines), err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert steps or len(lines) == 1, err
    assert contains.lower() in errors[0].lower(), errors[0]
    if absent:
        assert absent.lower() not in errors[0].lower(), errors[0]
    return errors[0]


# -- another user: cases that need a non-root process (root reads and writes anything) ----------------------
def _setpriv_usable() -> str:
    """Why the non-root cases cannot run here ("" when they can)."""
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    if os.geteuid() != 0:
        return "not running as root: cannot switch to another user"
    probe = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", PYTHON, "-c", "import zsrec"],
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )
    return "" if probe.returncode == 0 else f"user {NOBODY} cannot import zsrec here"


@pytest.fixture(scope="session")
def as_nobody() -> Iterator[None]:
    reason = _setpriv_usable()
    if reason:
        pytest.skip(f"non-root case skipped: {reason}")
    yield


@pytest.fixture()
def shared_tmp() -> Iterator[Path]:
    """A folder user `nobody` can enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="zsrec-hostile-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_as_nobody(argv: list[object], cache: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZSREC_CACHE_DIR": str(cache), "HOME": str(cache)}
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", PYTHON, "-m", "zsrec.cli"]
    return subprocess.run(
        [*command, *map(str, argv)], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
