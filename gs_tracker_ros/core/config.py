"""Typed configuration from nested plain dicts (parsed YAML, ROS parameters, ``--set`` overrides).

:func:`config_from_dict` builds any (nested) config dataclass from a dict, rejecting unknown keys
and values of the wrong type with a :class:`ConfigError` naming the dotted key; each layer owns
its config types and validates their ranges itself.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from .errors import ConfigError, yaml_error_text


def read_yaml_file(path: str | Path, what: str = "config file") -> Any:
    """The parsed content of the YAML file ``path`` (None for an empty file).

    Raises :class:`ConfigError` with one line naming ``what`` and the file when it is missing,
    unreadable, not UTF-8 text (the byte offset) or not valid YAML (the line and column).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                          f"{err.start}): is it a YAML file?") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} " + yaml_error_text(path, err)) from None


def config_from_dict(cls, data: dict[str, Any], prefix: str = "", defaults: Any = None):
    """Build ``cls`` from ``data``; fields missing from ``data`` keep the values of ``defaults``
    (by default ``cls()``), so a nested section with its own defaults (e.g. ``klt``) keeps them."""
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or 'root'}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + u for u in unknown)}; "
                          f"known: {', '.join(prefix + k for k in fields)}")
    defaults = cls() if defaults is None else defaults
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        key = prefix + name
        if dataclasses.is_dataclass(default):
            kwargs[name] = config_from_dict(type(default), value, prefix=key + ".", defaults=default)
        else:
            kwargs[name] = _coerce(key, value, default)
    return dataclasses.replace(defaults, **kwargs)


def _coerce(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if math.isnan(out):
                raise ValueError
            return out
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError
            return value
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]  # a one-element list written as a bare number, e.g. intervals=1
            items = list(value)
            if default and isinstance(default[0], int):
                return tuple(_coerce(key, v, 0) for v in items)
            return tuple(str(v) for v in items)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"config key '{key}' has invalid value {value!r} (expected {type(default).__name__})")
