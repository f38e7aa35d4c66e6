"""Typed configuration from nested plain dicts (parsed YAML, ROS parameters, ``--set`` overrides).

Each setting is declared once, on its config dataclass field, with :func:`setting`: default,
range, unit, whether it may change while the node runs, and (as a ``typing.Literal`` annotation)
its choices. From that one declaration come :func:`check_settings` (the range / choice part of
every config's ``validate()``), the node's ROS parameter descriptors and the docs/ros.md table
(:mod:`gs_tracker_ros.ros.parameters`).

:func:`config_from_dict` builds any (nested) config dataclass (tracker, training, engine) from a
dict, rejecting unknown keys and values of the wrong type with a :class:`ConfigError` naming the
dotted key.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, check_range, yaml_error_text

SETTING = "setting"  # the dataclasses.field metadata key of a :class:`Setting`


@dataclass(frozen=True)
class Setting:
    """What a config field declares beyond its type and default (see :func:`setting`).

    Attributes:
        doc: one line describing it (ROS descriptor, docs/ros.md); empty = the class docstring's
            ``Attributes:`` entry of the field.
        range: ``(lo, hi)`` bounds (None: no range); the ROS descriptor range, inclusive.
        low_open: the value must be > lo (validation), not >= lo.
        high_open: the value must be < hi (validation), not <= hi.
        runtime: may change while the node runs (read on every frame); False = structural.
        unit: shown after the range in errors (``px``, ``ms``, ...).
        note: shown after the range in errors, e.g. ``inf disables``.
    """

    doc: str = ""
    range: tuple[float, float] | None = None
    low_open: bool = False
    high_open: bool = False
    runtime: bool = False
    unit: str = ""
    note: str = ""

    def expectation(self) -> str:
        lo, hi = self.range
        if math.isinf(hi):
            text = f"{'>' if self.low_open else '>='} {lo:g}"
        else:
            text = f"in {'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
        text += f" {self.unit}" if self.unit else ""
        return text + (f" ({self.note})" if self.note else "")

    def contains(self, value: float) -> bool:
        lo, hi = self.range
        return (lo < value if self.low_open else lo <= value) and (value < hi if self.high_open else value <= hi)


def setting(default: Any, doc: str = "", *, range: tuple[float, float] | None = None, low_open: bool = False,
            high_open: bool = False, runtime: bool = False, unit: str = "", note: str = "") -> Any:
    """A dataclass field declaring one setting: ``x: float = setting(10.0, "what it does",
    range=(0, inf), low_open=True, runtime=True, unit="px")``. Without ``doc``, its doc is the
    class docstring's ``Attributes:`` entry; its choices, a ``Literal[...]`` annotation."""
    meta = Setting(doc=doc, range=range, low_open=low_open, high_open=high_open, runtime=runtime, unit=unit,
                   note=note)
    return dataclasses.field(default=default, metadata={SETTING: meta})


def setting_of(f: dataclasses.Field) -> Setting:
    """The :class:`Setting` of a field (a plain field: no range, structural)."""
    return f.metadata.get(SETTING) or Setting()


@functools.cache
def choices_of(cls: type) -> dict[str, tuple[str, ...]]:
    """``{field: allowed values}`` of the ``Literal[...]``-annotated fields of ``cls``."""
    hints = typing.get_type_hints(cls)
    return {name: tuple(typing.get_args(t)) for name, t in hints.items() if typing.get_origin(t) is typing.Literal}


def check_settings(config: Any, prefix: str) -> None:
    """The generic part of a config's ``validate()``: every field's declared range and choices.
    Raises a one-line :class:`ConfigError` naming the dotted key (``prefix`` + field)."""
    choices = choices_of(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        meta = setting_of(f)
        if meta.range is not None:
            check_range(meta.contains(value), prefix + f.name, value, meta.expectation())
        if f.name in choices:
            check_range(value in choices[f.name], prefix + f.name, value, "one of " + ", ".join(choices[f.name]))


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


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` (``"lk.window"``) of the nested dict ``tree`` to ``value``, creating
    the sections on the way; :class:`ConfigError` when a section on the way is not a mapping."""
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"unknown config key '{key}'")
    node[parts[-1]] = value


def config_from_dict(cls, data: dict[str, Any] | None, prefix: str = "", defaults: Any = None):
    """Build ``cls`` from ``data`` (None: empty); fields missing from ``data`` keep the values of
    ``defaults`` (by default ``cls()``), so a nested section with its own defaults (e.g. ``klt``)
    keeps them. Values are coerced to the type of the default; a field whose default is None or
    whose annotation is a union (``int | list[int]``) takes the value as given, for its
    ``validate()`` to judge. Validation is the caller's."""
    data = {} if data is None else data
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
        elif default is None or "|" in str(fields[name].type):
            kwargs[name] = value
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
        if isinstance(default, (tuple, list)):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]  # a one-element list written as a bare number, e.g. intervals=1
            items = list(value)
            if default and isinstance(default[0], (int, float)) and not isinstance(default[0], bool):
                items = [_coerce(key, v, default[0]) for v in items]
            else:
                items = [str(v) for v in items]
            return type(default)(items)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"config key '{key}' has invalid value {value!r} (expected {type(default).__name__})")
