"""How a long run tells what it is doing, and the records runs write.

- `Reporter`: the protocol the library calls (trainers, models and evaluations all report through it, so it
  sits in the core layer); `SilentReporter` reports nothing, the library default.
- `LoggingReporter` implements it with stdlib `logging` (the "zsrec" logger) and rich progress bars on terminals
  only; `console_logging` is the `zsrec` command's configuration: dim step lines and `warning:` lines on stderr.
- `json_ready` makes numpy values strict-JSON-ready.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter(Protocol):
    """Where a long run tells what it is doing; the library never prints by itself."""

    progress_bars: bool  # whether encoders may draw their own progress bars

    def message(self, text: str) -> None:
        """A step starts or ends (one line)."""

    def warning(self, text: str) -> None:
        """Something the user should know that does not stop the run (one line)."""

    def progress(self, description: str, total: int | None) -> AbstractContextManager[Callable[[int], None]]:
        """A context yielding `advance(n)` for `total` units of work (None: a step of unknown length)."""


class SilentReporter:
    """Reports nothing: the default for library callers."""

    progress_bars = False

    def message(self, text: str) -> None:
        pass

    def warning(self, text: str) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        yield lambda n: None


def json_ready(value: Any) -> Any:
    """`value` with numpy scalars as Python numbers, tuples as lists, and nan/inf as None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


logger = logging.getLogger("zsrec")
logger.addHandler(logging.NullHandler())  # a library logs nowhere until the application says where

#: longest progress description, so that bar, count and ETA fit on an 80-column terminal
DESCRIPTION_CHARS = 28


class LoggingReporter:
    """The Reporter protocol over `logging`: `message` at INFO, `warning` at WARNING on the "zsrec" logger;
    `progress` draws a transient rich bar where `console` is a terminal, and nothing elsewhere."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @property
    def progress_bars(self) -> bool:
        return self.console.is_terminal

    def message(self, text: str) -> None:
        logger.info(text)

    def warning(self, text: str) -> None:
        logger.warning(text)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A transient bar, gone when done; nothing at all where the console is not a terminal (rich would
        leave an empty line in logs)."""
        if not self.console.is_terminal:
            yield lambda n: None
            return
        with Progress(*progress_columns(total), console=self.console, transient=True) as bar:
            task = bar.add_task(short(description), total=total)
            yield lambda n: bar.advance(task, n)


def progress_columns(total: int | None) -> tuple[ProgressColumn, ...]:
    """Description, bar, done/total and time left (elapsed time for a step of unknown length)."""
    if total is None:
        return SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()
    return (
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )


def short(description: str, limit: int = DESCRIPTION_CHARS) -> str:
    """`description` cut to `limit` characters (an ellipsis marks the cut)."""
    return description if len(description) <= limit else description[: limit - 1] + "…"


class ConsoleLogHandler(logging.Handler):
    """Log records as the `zsrec` command prints them: a dim line per step, `warning: ...` in yellow."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.levelno >= logging.WARNING:
                self.console.print(f"warning: {text}", style="yellow", markup=False)
            else:
                self.console.print(text, style="dim", markup=False)
        except Exception:  # logging must never break the run it reports on
            self.handleError(record)


def console_logging(console: Console) -> LoggingReporter:
    """Send the "zsrec" logger's INFO and WARNING lines to `console` (replacing an earlier console's handler)
    and return a reporter whose bars share that console."""
    for handler in [h for h in logger.handlers if isinstance(h, ConsoleLogHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(ConsoleLogHandler(console))
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the command prints each line once, whatever the root logger does
    return LoggingReporter(console)
