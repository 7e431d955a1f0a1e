"""Data layer: load a dataset spec, validate its structure, clean and report, map ids to indexes."""

from __future__ import annotations

from zsrec.data.dataset import CATEGORY_SEP, Dataset, IdMap
from zsrec.data.loaders import dataset_of, load_dataset, load_folder, load_tables
from zsrec.data.summary import summarize
from zsrec.errors import DataValidationError

__all__ = [
    "CATEGORY_SEP",
    "DataValidationError",
    "Dataset",
    "dataset_of",
    "IdMap",
    "load_dataset",
    "load_folder",
    "load_tables",
    "summarize",
]
