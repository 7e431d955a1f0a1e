"""Run configuration files: a command's options as a YAML mapping (`--config run.yaml`).

Keys are option names, with dashes or underscores (`holdout-fraction` or `holdout_fraction`), plus the
command's positional arguments by name (`dataset`). A list value is joined with the option's separator
(`models: [tfidf, zero-shot]` is `--models tfidf,zero-shot`). Options given on the command line override the
file. A key the command does not take is an error naming it: a typo must never be ignored silently.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from zsrec.errors import ConfigError

#: options whose list values are joined by something other than a comma
LIST_SEPARATORS = {"categories": ";"}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (or JSON) file; ConfigError naming the file when it is anything else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{line}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of option names to values, got a {type(loaded).__name__}"
        )
    return loaded


def option_defaults(
    config: Mapping[str, Any], known: Collection[str], *, source: str = "config file"
) -> dict[str, Any]:
    """`config` as parameter defaults: keys normalised to parameter names (dashes to underscores, no leading
    dashes), lists joined, and every key checked against `known` (ConfigError naming the first unknown one)."""
    defaults: dict[str, Any] = {}
    for key, value in config.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name not in known:
            options = ", ".join(sorted(k.replace("_", "-") for k in known))
            raise ConfigError(f"{source}: unknown key {key!r}; this command takes {options}")
        if name in defaults:
            raise ConfigError(f"{source}: key {key!r} is given twice (dashes and underscores are the same key)")
        defaults[name] = _option_value(name, value, source)
    return defaults


def _option_value(name: str, value: Any, source: str) -> Any:
    if isinstance(value, list | tuple):
        if not all(isinstance(v, str | int | float) for v in value):
            raise ConfigError(f"{source}: {name} must be a value or a list of values, got {value!r}")
        return LIST_SEPARATORS.get(name, ",").join(str(v) for v in value)
    if isinstance(value, dict):
        raise ConfigError(f"{source}: {name} must be a value or a list of values, got a mapping")
    return value


def resolved_config(params: Mapping[str, Any], *, leave_out: Collection[str] = ("config",)) -> dict[str, Any]:
    """A command's final parameter values as a plain mapping that `--config` reads back (paths as text)."""
    return {
        name: str(value) if isinstance(value, Path) else value
        for name, value in params.items()
        if name not in leave_out
    }


def config_yaml(config: Mapping[str, Any]) -> str:
    """`config` as the YAML text of a file `--config` reads."""
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
