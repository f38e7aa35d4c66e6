"""The tracker settings inside a ROS 2 parameters file, for the command line.

``config/tracker.yaml`` is the node's parameters file (``/**/gs_tracker_node: ros__parameters:
{method: ..., max_tracks: ..., tracker: {...}}``). :func:`tracker_dict_from_params_file` takes the
node's ``tracker.*`` parameters (nested or dotted) and ``max_tracks`` out of it, as the plain
dict :meth:`~gs_tracker_ros.tracking.config.TrackerConfig.from_dict` reads, so that one file
configures both the node and ``gs-tracker --config``. Pure Python: no rclpy.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from ..core.config import set_dotted
from ..core.errors import ConfigError
from .parameters import SPECS, TRACKER_PREFIX

PARAMS_KEY = "ros__parameters"
NODE_NAME = "gs_tracker_node"
"""The node's default name (``gs_tracker_ros.ros.node.NODE_NAME``; test_cli checks they agree)."""


def is_params_file(data: Any) -> bool:
    """Whether parsed YAML ``data`` has the layout of a ROS 2 parameters file (node sections
    holding ``ros__parameters``)."""
    return isinstance(data, dict) and any(isinstance(v, dict) and PARAMS_KEY in v for v in data.values())


def section_applies(key: str, node_name: str = NODE_NAME) -> bool:
    """Whether the parameters-file section ``key`` (a node's full name, ``*`` / ``**`` wildcards
    allowed) applies to a node called ``node_name`` in any namespace."""
    key = str(key).strip()
    if key.strip("/") in ("**", "*"):
        return True
    return fnmatch.fnmatchcase(key.rstrip("/").rsplit("/", 1)[-1], node_name)


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{dotted name: value}`` of nested parameter dicts (ROS joins nested keys with dots)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def tracker_dict_from_params_file(data: dict[str, Any], path: Path | str, node_name: str = NODE_NAME) -> dict:
    """The nested TrackerConfig dict of the sections of parameters file ``data`` that apply to
    ``node_name`` (later sections win, as for the node). Raises :class:`ConfigError` when none
    applies."""
    sections = [k for k, v in data.items() if isinstance(v, dict) and section_applies(k, node_name)]
    if not sections:
        raise ConfigError(f"{path} is a ROS parameters file without a section for {node_name} "
                          f"(its sections: {', '.join(map(str, data))}); use e.g. '/**/{node_name}:'")
    flat: dict[str, Any] = {}
    for key in sections:
        params = data[key].get(PARAMS_KEY) or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: '{key}: {PARAMS_KEY}' must be a mapping of parameters")
        flat.update(_flatten(params))
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        spec = SPECS.get(name)
        if spec is not None and spec.config_key is not None:
            key = spec.config_key  # tracker.* and the node's max_tracks
        elif name.startswith(TRACKER_PREFIX):
            key = name[len(TRACKER_PREFIX):]  # not a known key: TrackerConfig.from_dict names it
        else:
            continue  # a node setting (method, image_qos, ...): not a tracker key
        set_dotted(nested, key, value)
    return nested
