"""Options shared by several subcommands: method choice and tracker configuration."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..tracking.config import TrackerConfig, UserConfig
from ..core.config import read_yaml_file, set_dotted
from ..core.errors import ConfigError
from ..methods import DEFAULT_METHOD, method_names


def add_method_options(parser: argparse.ArgumentParser, multiple: bool = False) -> None:
    names = ", ".join(method_names())
    if multiple:
        parser.add_argument("--method", action="append", default=None, metavar="M",
                            help=f"method to run (repeatable; default: {DEFAULT_METHOD}); one of: {names}")
    else:
        parser.add_argument("--method", default=DEFAULT_METHOD, metavar="M",
                            help=f"tracking method (default: {DEFAULT_METHOD}); one of: {names}")
    parser.add_argument("--config", type=Path, default=None, metavar="YAML",
                        help="tracker config file: the node's parameters file (config/tracker.yaml: its tracker.* "
                             "parameters and max_tracks) or a plain tracker config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one config value, e.g. --set integration.outlier_px=8 (repeatable)")


def check_methods(names: list[str] | None) -> None:
    """Refuse an unknown ``--method`` before any work (one line listing the methods)."""
    unknown = [m for m in names or [] if m not in method_names()]
    if unknown:
        raise ConfigError(f"unknown method '{unknown[0]}'; choose one of: {', '.join(method_names())}")


def load_config(path: Path | None, overrides: list[str]) -> UserConfig:
    """Config from an optional YAML file plus ``KEY=VALUE`` overrides (dotted keys), with the
    keys the overrides set (a profile never replaces them: :func:`~gs_tracker_ros.methods.make_tracker`).

    The file is a tracker config (optionally under a ``tracker:`` key) or the node's ROS
    parameters file (config/tracker.yaml): then its ``tracker.*`` parameters and ``max_tracks``
    are used (:mod:`gs_tracker_ros.ros.params_file`). The overrides are parsed once and the
    whole is validated once."""
    data: Any = {}
    if path is not None:
        from ..ros.params_file import is_params_file, tracker_dict_from_params_file

        loaded = read_yaml_file(path, "config file") or {}
        if is_params_file(loaded):
            data = tracker_dict_from_params_file(loaded, path)
        else:
            data = loaded.get("tracker", loaded) if isinstance(loaded, dict) else loaded
    parsed = parse_overrides(overrides)
    if parsed:
        data = _with_dotted(data, parsed)
    return UserConfig(TrackerConfig.from_dict(data), frozenset(parsed))


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as ``{dotted key: YAML-parsed value}``."""
    parsed = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        parsed[key.strip()] = _parse_value(value.strip())
    return parsed


def _with_dotted(data: Any, values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the nested dict ``data`` with ``{dotted key: value}`` set (unknown keys are left
    for :func:`~gs_tracker_ros.core.config.config_from_dict` to name)."""
    import copy

    if not isinstance(data, dict):
        raise ConfigError(f"config section 'root' must be a mapping, got {data!r}")
    out = copy.deepcopy(data)
    for key, value in values.items():
        set_dotted(out, key, value)
    return out


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
