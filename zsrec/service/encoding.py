"""The service's text encoder in a child process of its own.

A forward pass is hundreds of small torch operations, each taking and giving back the GIL; run in the server's
request threads it slowed every concurrent `/recommend` (its tail latency grew several-fold while items were
being added). The child holds the model; the request thread sends texts and waits without the GIL.

The child also runs at a lower scheduling priority (nice 10 by default): on a busy machine the kernel gives a
core to a waiting `/recommend` before the next encoder layer, so a new item waits a little longer instead of
every read (benchmarks/serving.py measures it; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from zsrec.encoders import load_encoder
from zsrec.encoders.base import Kind, TextEncoder
from zsrec.errors import ZsrecError


class EncoderUnavailableError(ZsrecError):
    """The encoder process died; the request that needed it cannot be answered now (HTTP 503)."""


_ENCODER: TextEncoder | None = None  # in the child only


def _load(spec: str, threads: int, parent: int, nice: int = 0) -> None:
    global _ENCODER
    if nice > 0:
        os.nice(nice)  # only ever lowers the priority, which needs no privilege
    # A child of a `kill -9`ed server would otherwise wait for work forever: its task queue's pipe never
    # reports end-of-file, as the child holds a copy of the writing end itself.
    threading.Thread(target=_exit_with, args=(parent,), name="zsrec-parent-watch", daemon=True).start()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # read when torch is imported
        os.environ[name] = str(threads)
    _ENCODER = load_encoder(spec, threads=threads)  # an ONNX Runtime encoder ("minilm@int8") takes them here
    if "torch" in sys.modules:  # imported before the variables above were set (e.g. by the parent's main module)
        sys.modules["torch"].set_num_threads(threads)


def _exit_with(parent: int, every_s: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(0)


def _describe() -> tuple[str, int]:
    assert _ENCODER is not None
    return _ENCODER.model_id, _ENCODER.dim


def _encode(texts: list[str], kind: Kind) -> np.ndarray:
    assert _ENCODER is not None
    return _ENCODER.encode(texts, kind=kind)


class EncoderProcess:
    """A `TextEncoder` whose model runs in one spawned child process; `close()` stops it.

    Loading happens in the child before the constructor returns, so a bad spec fails here, at start-up.
    """

    def __init__(self, spec: str, *, threads: int = 1, nice: int = 10) -> None:
        if not 0 <= nice <= 19:
            raise ZsrecError(f"nice must be in [0, 19], got {nice}")
        self.spec = spec
        self.n_forward_texts = 0
        context = multiprocessing.get_context("spawn")  # never fork a process that holds threads and faiss
        watch = (spec, threads, os.getpid(), nice)
        self._pool = ProcessPoolExecutor(1, mp_context=context, initializer=_load, initargs=watch)
        try:
            self.model_id, self.dim = self._pool.submit(_describe).result()
        except BrokenProcessPool as error:
            self._pool.shutdown(cancel_futures=True)
            raise ZsrecError(f"the encoder process could not load {spec!r}; see the log above") from error

    def encode(self, texts: Sequence[str], *, kind: Kind = "passage", show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        try:
            vectors = self._pool.submit(_encode, texts, kind).result()
        except (BrokenProcessPool, RuntimeError) as error:  # RuntimeError: submitted after close()
            raise EncoderUnavailableError("the encoder process has stopped; restart the service") from error
        self.n_forward_texts += len(texts)
        return vectors

    def pids(self) -> list[int]:
        """The child's process id (a list: empty once it has stopped)."""
        return [p.pid for p in (self._pool._processes or {}).values()]

    def alive(self) -> bool:
        """Whether the child can still encode (False once it died or `close()` ran): the readiness probe asks."""
        processes = list((self._pool._processes or {}).values())
        return bool(processes) and all(p.is_alive() for p in processes) and not self._pool._broken

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
