"""What every benchmark script shares: its own section of docs/benchmarks.md, its figures, and the machine line."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from zsrec.io import atomic_write_bytes, atomic_write_text
from zsrec.reports.figures import ReportFigure

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"


def write_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in docs/benchmarks.md (or append
    the block), atomically; the other scripts' sections stay as they are."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEach section is written by the script it names.\n"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def machine_line(minutes: float | None = None) -> str:
    """Machine, cores, Python, date (UTC) and, when given, the run's length."""
    run = f" Whole run: {minutes:.1f} min." if minutes is not None else ""
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}. "
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.{run}"
    )


FIGURES = REPO / "docs" / "benchmarks" / "figures"


def figure_markdown(figure: ReportFigure, name: str) -> str:
    """Write a report figure as docs/benchmarks/figures/NAME.png (atomically) and return its Markdown image line,
    relative to docs/benchmarks.md; a figure made again from the same numbers is the same file."""
    atomic_write_bytes(FIGURES / f"{name}.png", figure.png)
    return f"![{figure.title}](benchmarks/figures/{name}.png)"
