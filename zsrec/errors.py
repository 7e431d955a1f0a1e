"""Exceptions that callers are expected to catch, each a `ValueError` with an actionable message."""

from __future__ import annotations


class ZsrecError(ValueError):
    """Base of every error zsrec raises on bad input; the CLI prints its message and exits with code 2."""


class DataValidationError(ZsrecError):
    """A dataset file is structurally broken; the message names file, row, column and value."""


class NotFittedError(ZsrecError, AttributeError):
    """A recommender was used before `fit` (mirrors scikit-learn's NotFittedError)."""


class ConfigError(ZsrecError):
    """A setting has an invalid value; the message names the setting and shows the value."""
