"""Reporters over stdlib `logging`: steps and warnings go to the "zsrec" logger, progress bars to terminals only.

The library calls the `Reporter` protocol (zsrec.evaluation.run); `LoggingReporter` implements it with
`logging`, so an application decides where the lines go with ordinary logging configuration, and
`console_logging` is the `zsrec` command's configuration: dim step lines and `warning:` lines on stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
