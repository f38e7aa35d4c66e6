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


# PointTrack as bags recorded before 2026-12-05 store it (no ``p_lost``); their messages are
# upgraded to the current layout as they are read (:func:`upgrade_cdr`), so old bags still replay.
LEGACY_POINT_TRACK = """int64 id
float32 x
float32 y
float32 variance
bool visible
uint8 status
"""
LEGACY_NAME = "gs_tracker_ros_legacy/msg/PointTrack"


def is_legacy(connection) -> bool:
    """Whether a bag connection of this package's tracks type stores the definition without
    ``p_lost`` (its messages need :func:`upgrade_cdr`)."""
    if connection.msgtype not in (TRACKS_TYPE, TRACK_TYPE):
        return False
    data = getattr(getattr(connection, "msgdef", None), "data", "") or ""
    return bool(data) and "p_lost" not in data


@lru_cache(maxsize=1)
def _legacy_store():
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore as rosbags_store

    store = rosbags_store(Stores.ROS2_KILTED)
    types = get_types_from_msg(LEGACY_POINT_TRACK, LEGACY_NAME)
    types.update(get_types_from_msg(f"std_msgs/Header header\n{LEGACY_NAME.replace('/msg/', '/')}[] tracks\n",
                                    "gs_tracker_ros_legacy/msg/PointTrackArray"))
    store.register(types)
    return store


def upgrade_cdr(raw: bytes, msgtype: str) -> bytes:
    """CDR bytes of a legacy PointTrack / PointTrackArray (no ``p_lost``) re-encoded in the current
    layout with ``p_lost`` NaN (not estimated)."""
    old, new = _legacy_store(), get_typestore()
    legacy_type = msgtype.replace(f"{PACKAGE}/", "gs_tracker_ros_legacy/")
    msg = old.deserialize_cdr(raw, legacy_type)
    track = new.types[TRACK_TYPE]

    def convert(t):
        return track(id=t.id, x=t.x, y=t.y, variance=t.variance, p_lost=float("nan"), visible=t.visible,
                     status=t.status)

    if msgtype == TRACK_TYPE:
        return bytes(new.serialize_cdr(convert(msg), TRACK_TYPE))
    out = new.types[TRACKS_TYPE](header=msg.header, tracks=[convert(t) for t in msg.tracks])
    return bytes(new.serialize_cdr(out, TRACKS_TYPE))


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
