"""How an item or a user becomes one text for the encoder; each template has a stable id for cache keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self

import pandas as pd

from zsrec.data.dataset import CATEGORY_SEP
from zsrec.errors import ConfigError

_END_PUNCT = tuple(".!?;:。！？；：…")


class _TextTemplate:
    """What the item and user templates share: a stable id from their settings and a JSON round trip."""

    _id_prefix: ClassVar[str]  # "item" or "user"

    @property
    def id(self) -> str:
        """Short stable hash of the settings, e.g. "item-3f2a9c1b7d04" or "user-0c4e5d2a9b11"."""
        return f"{self._id_prefix}-" + _settings_hash(self)

    def to_dict(self) -> dict[str, Any]:
        """Settings plus `id`, JSON-ready, for result files."""
        return {**_settings(self), "id": self.id}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Rebuild from `to_dict()` output (lists become tuples; the derived `id` is ignored)."""
        known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]  # each subclass is a dataclass
        unknown = sorted(set(values) - set(known) - {"id"})
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} settings {unknown}; known: {known}")
        return cls(**{k: v for k, v in values.items() if k != "id"})


@dataclass(frozen=True)
class ItemTextTemplate(_TextTemplate):
    """Renders catalog rows as e.g. "Trail Tent 2P. Brand: Acme. Category: Outdoor > Tents. Light tent…".

    Empty or missing values are left out together with their label.
    """

    # Columns to render, in order. "title" renders bare, "brand" as "Brand: X", "category" as
    # "Category: A > B", "description" bare and cut to `max_description_chars`; any other column
    # as "Column name: value".
    _id_prefix = "item"

    fields: tuple[str, ...] = ("title", "brand", "category", "description")
    # Longest description kept, in characters (cut at a nearby word boundary, then "…"); None keeps all.
    max_description_chars: int | None = 200
    # Top levels of the category path kept (2 turns "A > B > C" into "A > B"); None keeps the whole path.
    category_levels: int | None = None
    # Written between category levels in the text (the dataset always uses " > ").
    category_separator: str = " > "
    # Written between rendered fields.
    field_separator: str = " "

    def __post_init__(self) -> None:
        if isinstance(self.fields, list):  # accept a list from JSON/TOML configs; stored as a tuple
            object.__setattr__(self, "fields", tuple(self.fields))
        _check_fields("fields", self.fields)
        _check_optional_positive("max_description_chars", self.max_description_chars)
        _check_optional_positive("category_levels", self.category_levels)
        if not isinstance(self.category_separator, str) or not self.category_separator:
            bad = self.category_separator
            raise ConfigError(f"category_separator must be a non-empty string, got {bad!r}")
        if not isinstance(self.field_separator, str):
            raise ConfigError(f"field_separator must be a string, got {self.field_separator!r}")

    def render(self, items: pd.DataFrame) -> list[str]:
        """One text per row of `items` (a `Dataset.items` frame), in row order."""
        _check_columns("ItemTextTemplate.fields", self.fields, items)
        columns = {f: items[f].tolist() for f in self.fields}
        return [
            self.field_separator.join(
                part for f in self.fields if (part := self._render_field(f, columns[f][row]))
            )
            for row in range(len(items))
        ]

    def _render_field(self, field: str, value: object) -> str:
        text = _clean(value)
        if not text:
            return ""
        if field == "title":
            return _sentence(text)
        if field == "brand":
            return _sentence(f"Brand: {text}")
        if field == "category":
            levels = [p.strip() for p in text.split(CATEGORY_SEP)]
            levels = [p for p in levels if p][: self.category_levels]
            return _sentence("Category: " + self.category_separator.join(levels)) if levels else ""
        if field == "description":
            return _sentence(_shorten(text, self.max_description_chars))
        return _sentence(f"{_label(field)}: {text}")


@dataclass(frozen=True)
class UserTextTemplate(_TextTemplate):
    """Renders users as their free-text profile followed by known attributes: "Loves hiking. Age: 34."

    A user with nothing known renders as "" (callers decide how to treat such users).
    """

    _id_prefix = "user"

    # Include the free-text `profile` column first.
    include_profile: bool = True
    # Attribute columns rendered as "Name: value.", in order; None means every column other than
    # user_id and profile, in frame order; () means none.
    attributes: tuple[str, ...] | None = None
    # Longest profile kept, in characters (cut like item descriptions); None keeps all.
    max_profile_chars: int | None = 500
    field_separator: str = " "

    def __post_init__(self) -> None:
        if not isinstance(self.include_profile, bool):
            raise ConfigError(f"include_profile must be True or False, got {self.include_profile!r}")
        if isinstance(self.attributes, list):
            object.__setattr__(self, "attributes", tuple(self.attributes))
        if self.attributes is not None:
            _check_fields("attributes", self.attributes, allow_empty=True)
            reserved = {"user_id", "profile"} & set(self.attributes)
            if reserved:
                raise ConfigError(f"attributes must not list {sorted(reserved)}, got {self.attributes!r}")
        _check_optional_positive("max_profile_chars", self.max_profile_chars)
        if not isinstance(self.field_separator, str):
            raise ConfigError(f"field_separator must be a string, got {self.field_separator!r}")

    def attribute_columns(self, users: pd.DataFrame) -> list[str]:
        if self.attributes is None:
            return [c for c in users.columns if c not in ("user_id", "profile")]
        _check_columns("UserTextTemplate.attributes", self.attributes, users)
        return list(self.attributes)

    def render(self, users: pd.DataFrame) -> list[str]:
        """One text per row of `users` (a `Dataset.users` frame), in row order."""
        attrs = self.attribute_columns(users)
        if self.include_profile:
            _check_columns("UserTextTemplate.include_profile", ("profile",), users)
            profiles = [_shorten(_clean(v), self.max_profile_chars) for v in users["profile"].tolist()]
        else:
            profiles = [""] * len(users)
        values = {a: users[a].tolist() for a in attrs}
        texts = []
        for row, profile in enumerate(profiles):
            parts = [_sentence(profile)] if profile else []
            parts += [_sentence(f"{_label(a)}: {v}") for a in attrs if (v := _clean(values[a][row]))]
            texts.append(self.field_separator.join(parts))
        return texts


def _clean(value: object) -> str:
    """A cell as one line of text; "" for None, NaN, pd.NA and blanks."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split())


def _sentence(text: str) -> str:
    return text if text.endswith(_END_PUNCT) else text + "."


def _shorten(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit * 0.8:  # a word boundary near the end; CJK text has none, so it is cut hard
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _label(column: str) -> str:
    words = column.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def with_item_template(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Settings values read back from JSON, their `template` entry (where there is one) an ItemTextTemplate again."""
    values = dict(values or {})
    if "template" in values:
        values["template"] = ItemTextTemplate.from_dict(values["template"])
    return values


def _settings(template: _TextTemplate) -> dict[str, Any]:
    values = asdict(template)  # type: ignore[call-overload]  # each template is a dataclass
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _settings_hash(template: _TextTemplate) -> str:
    payload = json.dumps({"type": type(template).__name__, **_settings(template)}, sort_keys=True)
    return hashlib.blake2b(payload.encode(), digest_size=6).hexdigest()


def _check_fields(name: str, fields: object, *, allow_empty: bool = False) -> None:
    if not isinstance(fields, tuple) or not all(isinstance(f, str) and f for f in fields):
        raise ConfigError(f"{name} must be a tuple of non-empty column names, got {fields!r}")
    if not fields and not allow_empty:
        raise ConfigError(f"{name} must name at least one column, got {fields!r}")
    duplicates = sorted({f for f in fields if fields.count(f) > 1})
    if duplicates:
        raise ConfigError(f"{name} must not repeat a column, got {fields!r} (repeated: {duplicates})")


def _check_optional_positive(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigError(f"{name} must be None or an integer >= 1, got {value!r}")


def _check_columns(setting: str, needed: tuple[str, ...], frame: pd.DataFrame) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        have = list(frame.columns)
        raise ConfigError(f"{setting} names columns the frame lacks: {missing} (it has {have})")
