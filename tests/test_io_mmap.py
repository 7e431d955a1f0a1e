"""Large saved arrays come back memory-mapped (no private copy), and updating them in place never touches the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsrec.io import is_mapped, load_arrays, save_arrays


def test_large_arrays_are_mapped_copy_on_write_and_small_ones_read(tmp_path: Path) -> None:
    big = np.arange(300_000, dtype=np.float32).reshape(-1, 3)  # 1.2 MB
    save_arrays(tmp_path, {"big": big, "small": np.arange(4)})
    loaded = load_arrays(tmp_path, ["big", "small"])
    assert is_mapped(loaded["big"]) and not is_mapped(loaded["small"])
    assert type(loaded["big"]) is np.ndarray  # no np.memmap subclass hooks on every slice
    np.testing.assert_array_equal(loaded["big"], big)
    loaded["big"][0] = -1.0  # a model updating its state in place changes its own pages only
    np.testing.assert_array_equal(load_arrays(tmp_path, ["big"])["big"][0], big[0])
