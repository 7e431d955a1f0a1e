"""EmbeddingCache: only misses are encoded, and crashes, corrupt files and parallel writers never break it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from zsrec.encoders import EmbeddingCache, HashingEncoder, default_cache_dir
from zsrec.encoders.base import Kind


class RecordingEncoder(HashingEncoder):
    """HashingEncoder that remembers every text it was asked to encode."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__(dim)
        self.seen: list[str] = []

    def encode(
        self, texts: Sequence[str], *, kind: Kind = "passage", show_progress: bool = False
    ) -> np.ndarray:
        self.seen.extend(texts)
        return super().encode(texts, kind=kind, show_progress=show_progress)


def titles(start: int, stop: int) -> list[str]:
    return [f"product {i} trail tent" for i in range(start, stop)]


def shard_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("shard-*.npy"))


def test_second_run_encodes_nothing_and_ten_new_texts_encode_ten(tmp_path: Path) -> None:
    enc = RecordingEncoder()
    first = EmbeddingCache(tmp_path).encode(enc, titles(0, 50))
    assert enc.n_forward_texts == 50
    np.testing.assert_array_equal(first, HashingEncoder(16).encode(titles(0, 50)))

    cache = EmbeddingCache(tmp_path)  # a fresh process's view: everything comes from disk
    again = cache.encode(enc, titles(0, 50))
    assert enc.n_forward_texts == 50 and (cache.hits, cache.misses) == (50, 0)
    np.testing.assert_array_equal(again, first)

    more = cache.encode(enc, titles(0, 60))
    assert enc.n_forward_texts == 60 and (cache.hits, cache.misses) == (50, 10)
    assert sorted(enc.seen[50:]) == sorted(titles(50, 60))
    np.testing.assert_array_equal(more, HashingEncoder(16).encode(titles(0, 60)))


def test_repeated_texts_in_one_call_are_encoded_once(tmp_path: Path) -> None:
    enc = RecordingEncoder()
    cache = EmbeddingCache(tmp_path)
    texts = ["tent", "stove", "tent", "", "stove", "tent", ""]
    out = cache.encode(enc, texts)
    assert sorted(enc.seen) == ["", "stove", "tent"] and cache.misses == 3
    np.testing.assert_array_equal(out, HashingEncoder(16).encode(texts))
    assert cache.encode(enc, []).shape == (0, 16)


def test_model_kind_and_namespace_are_separate_keys(tmp_path: Path) -> None:
    enc = RecordingEncoder()
    cache = EmbeddingCache(tmp_path)
    cache.encode(enc, ["tent"])
    cache.encode(enc, ["tent"], kind="query")
    cache.encode(enc, ["tent"], namespace="item-123")
    cache.encode(RecordingEncoder(dim=8), ["tent"])
    assert enc.n_forward_texts == 3
    cache.encode(enc, ["tent"], kind="query")
    assert enc.n_forward_texts == 3 and cache.hits == 1
    assert len(list(tmp_path.glob("*/meta.json"))) == 4


def test_default_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert EmbeddingCache().directory == tmp_path / "c"
    monkeypatch.delenv("ZSREC_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "zsrec" / "embeddings"


@pytest.mark.parametrize("fail_in", ["np.save", "os.replace"])
def test_a_crash_mid_write_leaves_the_cache_consistent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_in: str
) -> None:
    enc = RecordingEncoder()
    EmbeddingCache(tmp_path).encode(enc, titles(0, 20))

    def half_written_save(file: BinaryIO, arr: np.ndarray, allow_pickle: bool = True) -> None:
        file.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("killed")

    if fail_in == "np.save":
        monkeypatch.setattr(np, "save", half_written_save)
    else:
        monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full|killed"):
        EmbeddingCache(tmp_path).encode(enc, titles(0, 30))
    monkeypatch.undo()

    bucket = next(tmp_path.iterdir())
    assert [p.name for p in bucket.iterdir() if p.name.endswith(".tmp")] == []
    cache = EmbeddingCache(tmp_path)
    out = cache.encode(enc, titles(0, 30))
    assert (cache.hits, cache.misses) == (20, 10)
    np.testing.assert_array_equal(out, HashingEncoder(16).encode(titles(0, 30)))


def test_corrupt_and_temporary_files_are_skipped(tmp_path: Path) -> None:
    enc = RecordingEncoder()
    EmbeddingCache(tmp_path).encode(enc, titles(0, 20))
    bucket = next(tmp_path.iterdir())
    good = shard_files(tmp_path)[0]
    (bucket / "shard-0-truncated.npy").write_bytes(good.read_bytes()[:150])  # left by a killed old version
    (bucket / "shard-1-wrongdim.npy").write_bytes(b"")
    np.save(bucket / "shard-2-plain.npy", np.zeros((3, 16), dtype=np.float32))
    (bucket / ".shard-3.npy.abc.tmp").write_bytes(b"half a shard")

    cache = EmbeddingCache(tmp_path)
    with pytest.warns(RuntimeWarning, match="skipping shard") as caught:
        out = cache.encode(enc, titles(0, 25))
    assert len(caught) == 3
    assert (cache.hits, cache.misses) == (20, 5)
    np.testing.assert_array_equal(out, HashingEncoder(16).encode(titles(0, 25)))


def test_many_shards_are_compacted_without_losing_entries(tmp_path: Path) -> None:
    enc = RecordingEncoder()
    cache = EmbeddingCache(tmp_path, max_shards=4)
    for start in range(0, 100, 5):
        cache.encode(enc, titles(start, start + 5))
    assert len(shard_files(tmp_path)) <= 5
    fresh = EmbeddingCache(tmp_path)
    out = fresh.encode(enc, titles(0, 100))
    assert (fresh.hits, fresh.misses) == (100, 0) and enc.n_forward_texts == 100
    np.testing.assert_array_equal(out, HashingEncoder(16).encode(titles(0, 100)))


def test_compaction_keeps_a_shard_another_process_writes_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = RecordingEncoder()
    compacting, other = EmbeddingCache(tmp_path, max_shards=2), EmbeddingCache(tmp_path)
    compacting.encode(enc, titles(0, 5))
    compacting.encode(enc, titles(5, 10))
    # Deterministic interleaving: the other writer commits a shard right after the merged shard is written
    # and before the compacting cache deletes the shards it merged.
    bucket = next(iter(compacting._buckets.values()))
    write = bucket._write

    def write_then_other_writes(keys: np.ndarray, vectors: np.ndarray) -> str:
        name = write(keys, vectors)
        if len(keys) == 15:  # the merged shard
            other.encode(enc, titles(100, 105))
        return name

    monkeypatch.setattr(bucket, "_write", write_then_other_writes)
    compacting.encode(enc, titles(10, 15))
    assert len(shard_files(tmp_path)) == 2  # the merged shard + the other writer's

    fresh = EmbeddingCache(tmp_path)
    fresh.encode(enc, titles(0, 15) + titles(100, 105))
    assert (fresh.hits, fresh.misses) == (20, 0)


def _write_in_parallel(directory: str, offset: int, start_together: Barrier, result: Queue) -> None:
    enc = HashingEncoder(16)
    cache = EmbeddingCache(directory, max_shards=3)  # small, so both processes compact while writing
    start_together.wait(timeout=60)
    for start in range(offset, offset + 600, 4):
        cache.encode(enc, titles(start, start + 6))  # overlaps the other writer's range
    result.put(enc.n_forward_texts)


def test_two_processes_writing_at_once_leave_every_entry_readable(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork: the session may hold torch threads
    barrier, result = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(target=_write_in_parallel, args=(str(tmp_path), offset, barrier, result))
        for offset in (0, 300)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert result.get(timeout=5) > 0 and result.get(timeout=5) > 0

    enc = RecordingEncoder()
    cache = EmbeddingCache(tmp_path)
    expected = titles(0, 902)  # the second writer's last call starts at 896 and writes 6
    out = cache.encode(enc, expected)
    assert (cache.hits, cache.misses) == (902, 0)
    np.testing.assert_array_equal(out, HashingEncoder(16).encode(expected))
    assert [p for p in tmp_path.rglob("*.tmp")] == []


def test_cached_vectors_are_read_memory_mapped_not_copied(tmp_path: Path) -> None:
    enc = RecordingEncoder()
    EmbeddingCache(tmp_path).encode(enc, titles(0, 50))
    cache = EmbeddingCache(tmp_path)
    out = cache.encode(enc, titles(0, 50))
    bucket = next(iter(cache._buckets.values()))
    assert bucket.shards and all(isinstance(s.vectors, np.memmap) for s in bucket.shards.values())
    np.testing.assert_array_equal(out, HashingEncoder(16).encode(titles(0, 50)))
