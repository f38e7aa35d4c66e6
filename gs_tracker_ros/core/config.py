"""Typed configuration from nested plain dicts (parsed YAML, ROS parameters, ``--set`` overrides).

:func:`config_from_dict` builds any (nested) config dataclass from a dict, rejecting unknown keys
and values of the wrong type with a :class:`ConfigError` naming the dotted key; each layer owns
its config types and validates their ranges itself.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConfigError


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
