"""`zsrec check DIR`: the checks every load runs, on demand, for a model folder, a service folder or both.

The model is loaded as `evaluate` and `serve` would load it (manifest, then values), its `training.json` read
back, and a service folder's `service.json` and SQLite store checked down to the item vectors.
"""

from __future__ import annotations

from pathlib import Path

from zsrec.errors import ConfigError
from zsrec.manifest import check_store_vectors
from zsrec.service.bundle import DATABASE, MANIFEST, Manifest
from zsrec.training.artifacts import load_model_folder


def check_folder(directory: str | Path) -> list[str]:
    """Run every check on a saved folder; returns what was checked, one line each.

    Raises:
        CorruptModelError: a file is missing, changed since saving, or holds impossible values (the message
            names the file). ConfigError: the path is not a model or service folder at all.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a folder")
    is_model, is_service = (directory / "config.json").is_file(), (directory / MANIFEST).is_file()
    if not is_model and not is_service:
        raise ConfigError(f"{directory} is neither a model folder (config.json) nor a service folder ({MANIFEST})")
    done = []
    if is_model:
        model, record = load_model_folder(directory)
        done.append(f"model {model.name}: {model.n_items_:,} items, {model.n_users_:,} users")
        if record is not None:
            done.append(f"training record: protocol {record.protocol}")
    if is_service:
        done.append(check_service(directory))
    return done


def check_service(directory: str | Path) -> str:
    """The service folder's manifest, service.json and store, down to each item vector; what was checked."""
    directory = Path(directory)
    manifest = Manifest.read(directory)
    n_vectors = check_store_vectors(directory / DATABASE, manifest.dim)
    return f"service store: {n_vectors:,} live item vectors of dimension {manifest.dim}"
