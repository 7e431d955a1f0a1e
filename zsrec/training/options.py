"""The CLI's one-option form of a settings dataclass: `field=value,field=value` (lists joined by `+`)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from zsrec.errors import ConfigError, split_list


def parse_fields(cls: type, spec: str, option: str) -> dict[str, Any]:
    """Field values of the dataclass `cls` from `spec`, e.g. `epochs=1,lr=3e-4` or `augment=typos+stuffing`.

    Values are converted to the field's declared type (int, float, bool, str, or a tuple of str); unknown
    fields, repeated fields and unconvertible values raise ConfigError naming `option`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for part in split_list(spec, option):
        key, sep, raw = (x.strip() for x in part.partition("="))
        if not sep or not raw:
            raise ConfigError(f"{option} takes field=value pairs, got {part!r}")
        if key not in fields:
            raise ConfigError(f"{option} has no field {key!r}; fields: {', '.join(fields)}")
        if key in values:
            raise ConfigError(f"{option} names {key!r} twice")
        values[key] = _convert(hints[key], raw, f"{option} {key}")
    if not values:
        raise ConfigError(f"{option} is empty; give field=value pairs")
    return values


def _convert(kind: Any, raw: str, where: str) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # `int | None`: "none" or an int
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if raw.lower() == "none" and len(options) < len(typing.get_args(kind)):
            return None
        if len(options) == 1:
            return _convert(options[0], raw, where)
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"{where}: {raw!r} is not true or false")
        return raw.lower() in ("true", "1")
    if typing.get_origin(kind) is tuple:
        return tuple(a.strip() for a in raw.split("+") if a.strip())
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError as error:
            raise ConfigError(f"{where}: {raw!r} is not a number") from error
    if isinstance(kind, type) and issubclass(kind, str):  # str, or a StrEnum choice the settings then check
        return raw
    raise ConfigError(f"{where} cannot be set from the command line")
