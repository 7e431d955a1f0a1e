"""How a long run tells what it is doing (`Reporter`), and `json_ready` for the records runs write.

Core layer: trainers, models and evaluations all report through this protocol, so it sits below all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import numpy as np


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
