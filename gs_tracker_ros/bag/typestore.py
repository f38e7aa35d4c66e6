"""The rosbags typestore used for every bag this project reads or writes.

Standard ROS 2 types come from rosbags' built-in Kilted store; the project's own messages
(``gs_tracker_ros/msg/PointTrack`` and ``PointTrackArray``) are registered from the ``.msg`` text
in ``msg/``, so bags carry the same definitions the ROS build generates code from. The ``.msg``
files are looked up in the source checkout first, then in ``share/gs_tracker_ros/msg`` of every
ament prefix (``AMENT_PREFIX_PATH``) and of this interpreter's prefix (a colcon or venv install).

Nothing here imports rclpy: rosbags is pure Python.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from ..core.errors import InputError

PACKAGE = "gs_tracker_ros"
# The message files registered in the typestore (file stem = type name), in dependency order.
CUSTOM_MESSAGES: tuple[str, ...] = ("PointTrack", "PointTrackArray")

IMAGE_TYPE = "sensor_msgs/msg/Image"
TRACKS_TYPE = f"{PACKAGE}/msg/PointTrackArray"
TRACK_TYPE = f"{PACKAGE}/msg/PointTrack"


def msg_search_dirs() -> list[Path]:
    """Folders that may hold the package's ``.msg`` files, most specific first."""
    dirs = [Path(__file__).resolve().parents[2] / "msg"]
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    for prefix in prefixes:
        dirs.append(Path(prefix) / "share" / PACKAGE / "msg")
    return dirs


def find_msg_dir() -> Path:
    """The first of :func:`msg_search_dirs` holding every file of :data:`CUSTOM_MESSAGES`."""
    looked = msg_search_dirs()
    for folder in looked:
        if all((folder / f"{name}.msg").is_file() for name in CUSTOM_MESSAGES):
            return folder
    raise InputError(
        "cannot find the gs_tracker_ros message definitions ("
        + ", ".join(f"{n}.msg" for n in CUSTOM_MESSAGES)
        + ") in any of: " + ", ".join(str(p) for p in looked)
    )


@lru_cache(maxsize=None)
def _typestore_for(msg_dir: str):
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types: dict = {}
    for name in CUSTOM_MESSAGES:
        path = Path(msg_dir) / f"{name}.msg"
        try:
            text = path.read_text()
        except OSError as err:
            raise InputError(f"cannot read message definition {path}: {err}") from None
        types.update(get_types_from_msg(text, f"{PACKAGE}/msg/{name}"))
    store.register(types)
    return store


def get_typestore():
    """rosbags ``Typestore`` with the ROS 2 Kilted types plus this package's messages (cached)."""
    return _typestore_for(str(find_msg_dir()))


def register_bag_types(store, connections) -> None:
    """Register message types a bag defines that ``store`` does not know yet (from the msgdefs
    stored in the bag), so bags written by other tools with other custom types can be read."""
    from rosbags.typesys import get_types_from_idl, get_types_from_msg

    for conn in connections:
        if conn.msgtype in store.types or not conn.msgdef or not conn.msgdef.data:
            continue
        data = conn.msgdef.data
        try:
            if data.startswith("=" * 80 + "\nIDL: ") or conn.msgdef.format.name == "IDL":
                types = get_types_from_idl(data)
            else:
                types = get_types_from_msg(data, conn.msgtype)
            store.register(types)
        except Exception:  # an unknown type only matters when it is deserialised
            continue
