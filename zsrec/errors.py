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


def check_at_least(settings: object, **minimums: float) -> None:
    """Each named field of `settings` must be >= its minimum, e.g. ConfigError("k must be >= 1, got 0")."""
    for name, minimum in minimums.items():
        value = getattr(settings, name)
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def check_positive(settings: object, *names: str) -> None:
    """Each named field of `settings` must be > 0, e.g. ConfigError("epsilon must be > 0, got 0.0")."""
    for name in names:
        value = getattr(settings, name)
        if value <= 0:
            raise ConfigError(f"{name} must be > 0, got {value}")


def check_choice(settings: object, name: str, choices: tuple[str, ...], *, shown: str | None = None) -> None:
    """Field `name` of `settings` must be one of `choices` (listed as `shown`, default the tuple itself)."""
    value = getattr(settings, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices if shown is None else shown}, got {value!r}")


def check_fraction(settings: object, name: str) -> None:
    """Field `name` of `settings` must lie strictly between 0 and 1."""
    value = getattr(settings, name)
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{name} must be in (0, 1), got {value}")


class CorruptModelError(ZsrecError):
    """A saved model or service folder is damaged: a file missing, truncated, changed since saving, or holding
    impossible values (NaN vectors, indexes out of range); the message names the file."""


def split_list(text: str, option: str, *, sep: str = ",") -> list[str]:
    """The stripped elements of a `sep`-separated option value; an empty element ("10,,50", "a,") raises
    ConfigError naming `option`, since it is a typo more often than a wish. An all-blank value gives []."""
    if not text.strip():
        return []
    parts = [p.strip() for p in text.split(sep)]
    if any(not p for p in parts):
        raise ConfigError(f"{option} has an empty element in {text!r}; separate values with a single {sep!r}")
    return parts


def check_at_most(settings: object, **maximums: int) -> None:
    """Each named field of `settings` must be <= its maximum: a bound on what a size option may cost."""
    for name, maximum in maximums.items():
        value = getattr(settings, name)
        if value > maximum:
            raise ConfigError(f"{name} must be <= {maximum:,}, got {value:,}")
