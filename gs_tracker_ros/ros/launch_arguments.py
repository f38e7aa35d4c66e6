"""The launch arguments of gs_tracker_node, declared once for launch/tracker.launch.py and
launch/replay.launch.py (launch is imported only by :func:`declarations`, which launch files call).

Each argument: its default ("" for the node-parameter arguments: empty leaves the params file's
value; None for params_file: the package's config/tracker.yaml, a launch substitution the launch
file builds), its description as ``--show-args`` prints it, and its choices (None: any text).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable


@dataclass(frozen=True)
class LaunchArgument:
    default: Any
    description: str
    choices: tuple[str, ...] | None = None


NODE_ARGUMENTS: dict[str, LaunchArgument] = {
    "image_topic": LaunchArgument(
        "/camera/image_raw",
        "sensor_msgs/Image topic to track points on (the base topic with image_transport:=compressed)"),
    "params_file": LaunchArgument(None, "parameters of gs_tracker_node (YAML)"),
    "namespace": LaunchArgument("", "namespace of the node and of its topics (tracks, tracks_image)"),
    "camera_info_topic": LaunchArgument(
        "camera_info",
        "sensor_msgs/CameraInfo topic; the default (camera_info, not remapped) pairs it with image_topic like "
        "image_transport: its sibling, /camera/image_raw -> /camera/camera_info"),
    # the arguments below set the node parameter of their name when given
    "method": LaunchArgument(
        "", "tracking method: probfuse (live), probfuse-fast (60 Hz cameras), probfuse-accurate, klt, dis-chain, ... "
            "(docs/ros.md); empty: the params file's (probfuse in config/tracker.yaml)."),
    "image_qos": LaunchArgument(
        "", "QoS of the image subscription: auto (reliable when the camera publishes reliable, else best effort), "
            "reliable, sensor_data or system_default; empty: the params file's (auto).",
        ("", "auto", "reliable", "sensor_data", "system_default")),
    "image_transport": LaunchArgument(
        "", "raw (sensor_msgs/Image on image_topic) or compressed (CompressedImage on <image_topic>/compressed); "
            "empty: the params file's (raw).", ("", "raw", "compressed")),
    "autostart": LaunchArgument(
        "", "configure and activate the lifecycle node at start-up; false: drive it with ros2 lifecycle set "
            "/<namespace>/gs_tracker_node configure / activate; empty: the params file's (true).",
        ("", "true", "false")),
}

# The arguments that set a node parameter when given (empty: the params file's value stands).
NODE_PARAMETER_ARGUMENTS = ("method", "image_qos", "image_transport", "autostart")


def declarations(names: Iterable[str], changed: dict[str, LaunchArgument] | None = None,
                 defaults: dict[str, Any] | None = None) -> list[Any]:
    """launch's DeclareLaunchArgument for each of ``names`` (keys of NODE_ARGUMENTS), in order.

    ``changed`` replaces an argument's entry (a launch file's own default and description);
    ``defaults`` gives the defaults that are launch substitutions (params_file).
    """
    from launch.actions import DeclareLaunchArgument

    out = []
    for name in names:
        arg = (changed or {}).get(name, NODE_ARGUMENTS[name])
        if defaults and name in defaults:
            arg = replace(arg, default=defaults[name])
        out.append(DeclareLaunchArgument(name, default_value=arg.default, description=arg.description,
                                         choices=None if arg.choices is None else list(arg.choices)))
    return out
