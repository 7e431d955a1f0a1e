"""The floor plan: zsrec's packages import only downward, and no module imports itself back through others.

The layers and the per-package no-cycle rule are import-linter contracts in pyproject.toml; these tests run
them, and add what they do not cover: no cycle between single modules anywhere (models and their trainers
share one layer, so a package-level cycle between those two is allowed, a module-level one is not), and no
import of zsrec hidden inside a function (the CLI's lazy imports keep its start-up fast and are exempt).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "zsrec"
#: modules whose function-level imports of zsrec keep start-up fast (not hiding a cycle)
LAZY_BY_DESIGN = {"zsrec/cli.py"}


def _env() -> dict[str, str]:
    # import-linter imports the package to find it: make that the package of this checkout
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def test_the_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle between modules of the graph, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph.modules):
        if root in state:
            continue
        path = [root]
        stack = [iter(sorted(graph.find_modules_directly_imported_by(root)))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.find_modules_directly_imported_by(nxt))))
    return None


def test_no_module_imports_itself_back() -> None:
    sys.path.insert(0, str(REPO))
    try:
        graph = grimp.build_graph("zsrec", cache_dir=None)
    finally:
        sys.path.remove(str(REPO))
    assert "zsrec.vectors" in graph.modules  # the package of this checkout
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    assert _cycle(graph) is None
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycle(graph) in (["p.a", "p.b", "p.c", "p.a"], ["p.b", "p.c", "p.a", "p.b"], ["p.c", "p.a", "p.b", "p.c"])


def _function_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                names = []
                if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                    names = [inner.module]
                elif isinstance(inner, ast.Import):
                    names = [alias.name for alias in inner.names]
                found += [f"{path.relative_to(REPO)}:{inner.lineno} {n}" for n in names if n.split(".")[0] == "zsrec"]
    return found


def test_no_zsrec_import_hides_inside_a_function() -> None:
    hidden = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(REPO).as_posix() not in LAZY_BY_DESIGN
        for hit in _function_level_imports(path)
    ]
    assert hidden == []
