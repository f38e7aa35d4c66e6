"""Reading and writing rosbag2 bags (sqlite3 or mcap) with rosbags, with errors that name the bag.

Every read goes through :func:`open_bag` / :func:`iter_messages`: a missing, truncated or corrupt
bag raises :class:`BagError` (an :class:`~gs_tracker_ros.core.errors.InputError`, so the CLI prints
one line, no traceback) whose message names the file — also when the damage is only found while
iterating. Messages stay CDR bytes until someone asks for the deserialised form.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..core.errors import InputError
from ..core.output import AtomicOutput, check_output, os_error_text
from .typestore import IMAGE_TYPE, get_typestore, is_legacy, register_bag_types, upgrade_cdr

STORAGE_FORMATS = ("sqlite3", "mcap")
# Key of the bag's metadata.yaml custom_data entry that holds the ground-truth description.
GT_METADATA_KEY = "gs_tracker_ros.ground_truth"


class BagError(InputError):
    """A bag cannot be read or written; the message names the bag."""


@dataclass
class BagInfo:
    """What :func:`bag_info` reports about a bag."""

    path: Path
    storage: str
    topics: dict[str, tuple[str, int]]  # topic -> (msgtype, message count)
    message_count: int
    start_ns: int
    end_ns: int
    custom_data: dict[str, str]

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (rosbags or rclpy) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_sec_nsec(ns: int) -> tuple[int, int]:
    return int(ns // 1_000_000_000), int(ns % 1_000_000_000)


def _describe(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) < 300 else text[:300] + "..."


def _error(path: Path, err: BaseException, doing: str = "read") -> BagError:
    if isinstance(err, sqlite3.DatabaseError):
        hint = " (the sqlite3 file is truncated or corrupt)"
    else:
        hint = " (truncated, corrupt or not a rosbag2 bag)"
    return BagError(f"cannot {doing} bag {path}: {_describe(err)}{hint}")


@contextmanager
def open_bag(path: str | Path):
    """Open a bag (a rosbag2 directory, or a single .db3 / .mcap file) for reading.

    Yields a rosbags ``Reader``; unknown message types defined inside the bag are registered in
    the project's typestore. Raises :class:`BagError` naming ``path`` on any failure.
    """
    from rosbags.rosbag2 import Reader

    path = Path(path).expanduser()
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(f"{path} is not a rosbag2 bag: no metadata.yaml in it")
    try:
        reader = Reader(path)
        reader.open()
    except BagError:
        raise
    except Exception as err:  # rosbags/sqlite3/mcap raise many kinds
        raise _error(path, err) from None
    try:
        register_bag_types(get_typestore(), reader.connections)
        yield reader
    finally:
        try:
            reader.close()
        except Exception:  # already failing: closing is best effort
            pass


def _custom_data(reader) -> dict[str, str]:
    meta = getattr(getattr(reader, "storage", None), "metadata", None)
    custom = getattr(meta, "custom", None)
    return dict(custom or {})


def bag_info(path: str | Path) -> BagInfo:
    with open_bag(path) as reader:
        topics = {}
        for conn in reader.connections:
            msgtype, count = topics.get(conn.topic, (conn.msgtype, 0))
            topics[conn.topic] = (msgtype, count + conn.msgcount)
        storage = "mcap" if any(Path(str(getattr(s, "path", ""))).suffix == ".mcap"
                                for s in getattr(reader.storage, "storages", [])) else "sqlite3"
        if Path(path).suffix == ".mcap":
            storage = "mcap"
        count = reader.message_count
        return BagInfo(Path(path), storage, topics, count, reader.start_time if count else 0,
                       reader.end_time if count else 0, _custom_data(reader))


def read_custom_data(path: str | Path) -> dict[str, str]:
    """The ``custom_data`` of a bag directory's metadata.yaml ({} for single-file bags)."""
    with open_bag(path) as reader:
        return _custom_data(reader)


def iter_messages(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[tuple[str, str, int, bytes]]:
    """``(topic, msgtype, log time ns, CDR bytes)`` of the bag's messages in log-time order.

    ``topics`` restricts the output (None = all). Track messages recorded with the definition
    before ``p_lost`` existed come out in the current layout (``p_lost`` NaN). Raises :class:`BagError` naming the bag when it
    cannot be opened or turns out to be damaged part-way.
    """
    path = Path(path).expanduser()
    wanted = None if topics is None else set(topics)
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if wanted is not None and not conns:
            return
        try:
            legacy = {c.id for c in conns if is_legacy(c)}
            for conn, timestamp, raw in reader.messages(connections=conns):
                data = upgrade_cdr(bytes(raw), conn.msgtype) if conn.id in legacy else bytes(raw)
                yield conn.topic, conn.msgtype, int(timestamp), data
        except GeneratorExit:
            raise
        except BagError:
            raise
        except Exception as err:  # rosbags/sqlite3/mcap raise many kinds
            raise _error(path, err) from None


def deserialize(raw: bytes, msgtype: str) -> Any:
    return get_typestore().deserialize_cdr(raw, msgtype)


def serialize(msg: Any, msgtype: str) -> bytes:
    return bytes(get_typestore().serialize_cdr(msg, msgtype))


# ---------------------------------------------------------------------------------- images
def make_header(stamp_ns: int, frame_id: str):
    store = get_typestore()
    Time = store.types["builtin_interfaces/msg/Time"]
    Header = store.types["std_msgs/msg/Header"]
    sec, nsec = ns_to_sec_nsec(stamp_ns)
    return Header(stamp=Time(sec=sec, nanosec=nsec), frame_id=frame_id)


def rgb_to_image_cdr(rgb: np.ndarray, stamp_ns: int, frame_id: str) -> bytes:
    """CDR bytes of a sensor_msgs/Image ``rgb8`` (unpadded) holding ``rgb (H, W, 3) uint8``."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"expected an RGB (H, W, 3) uint8 frame, got {rgb.dtype} {rgb.shape}")
    store = get_typestore()
    Image = store.types[IMAGE_TYPE]
    h, w = rgb.shape[:2]
    msg = Image(header=make_header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                is_bigendian=0, step=w * 3, data=rgb.reshape(-1))
    return serialize(msg, IMAGE_TYPE)


def image_cdr_to_rgb(raw: bytes) -> tuple[int, np.ndarray]:
    """``(stamp ns, RGB (H, W, 3) uint8)`` from the CDR bytes of a sensor_msgs/Image (rgb8,
    bgr8, rgba8, bgra8, mono8 or mono16; see :mod:`gs_tracker_ros.ros.image_conversion`)."""
    from ..ros.image_conversion import image_to_rgb  # pure numpy/cv2, no rclpy

    msg = deserialize(raw, IMAGE_TYPE)
    rgb = image_to_rgb(msg)
    return stamp_to_ns(msg.header.stamp), np.array(rgb, copy=True)


# ---------------------------------------------------------------------------------- writing
BAG_SUFFIXES = frozenset({".db3", ".mcap", ".yaml", ".db3-shm", ".db3-wal", ".zstd"})
"""The files a rosbag2 folder holds (a folder with anything else is not replaced or removed)."""


def _write_error(path: Path, err: BaseException) -> BagError:
    """One line for a failure while writing bag ``path``: the cause (e.g. ``no space left on
    device``, sqlite's ``database or disk is full``), also when the storage library wrapped it."""
    cause = err
    while not isinstance(cause, OSError) and (cause.__cause__ or cause.__context__) is not None:
        cause = cause.__cause__ or cause.__context__
    text = os_error_text(cause) if isinstance(cause, OSError) else _describe(err)
    return BagError(f"cannot write bag {path}: {text}")


def check_bag_output(path: str | Path, overwrite: bool, option: str = "--out") -> Path:
    """Check before any work that a bag can be written at ``path``: its folder is writable, and
    it does not exist (or, with ``overwrite``, is a bag). Raises :class:`BagError` /
    :class:`~gs_tracker_ros.core.errors.OutputError`."""
    path = check_output(path, option, folder=True)
    if path.exists():
        if not overwrite:
            raise BagError(f"output bag {path} already exists (remove it or pass --overwrite)")
        unexpected = [p.name for p in path.iterdir() if p.is_dir() or p.suffix not in BAG_SUFFIXES]
        if unexpected:
            raise BagError(f"refusing to replace {path}: it holds files that are not part of a bag "
                           f"({', '.join(unexpected[:3])})")
    return path


class BagWriter:
    """Thin wrapper over rosbags' ``Writer`` (rosbag2 format version 9) with clear errors.

    ``add_topic(topic, msgtype)`` then ``write(topic, log_time_ns, cdr_bytes)``; use as a context
    manager. The bag is written into a temporary folder beside ``path``
    (:class:`~gs_tracker_ros.core.output.AtomicOutput`) and renamed to ``path`` when it is closed,
    replacing an existing bag only then (``overwrite``); on an exception inside the ``with``
    block, or a write error such as a full disk (one line, :class:`BagError`), nothing is left.
    """

    def __init__(self, path: str | Path, storage: str = "sqlite3", overwrite: bool = False,
                 custom_data: dict[str, str] | None = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGE_FORMATS:
            raise BagError(f"unknown bag format '{storage}' (choose {' or '.join(STORAGE_FORMATS)})")
        self.path = check_bag_output(path, overwrite, "output bag")
        self._output = AtomicOutput(self.path, folder=True)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self._output.tmp, version=9, storage_plugin=plugin)
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, value)
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._call(self._writer.open)

    def _call(self, fn, *args) -> Any:
        """``fn(*args)`` with any failure turned into one :class:`BagError` line (and the
        temporary bag removed)."""
        try:
            return fn(*args)
        except Exception as err:  # rosbags/sqlite3/mcap raise many kinds
            self._abandon()
            raise _write_error(self.path, err) from None

    def add_topic(self, topic: str, msgtype: str, qos: Any = ()) -> None:
        if topic in self._connections:
            return
        self._connections[topic] = self._call(lambda: self._writer.add_connection(
            topic, msgtype, typestore=get_typestore(), offered_qos_profiles=qos))
        self.counts[topic] = 0

    def write(self, topic: str, log_time_ns: int, raw: bytes) -> None:
        self._call(self._writer.write, self._connections[topic], int(log_time_ns), raw)
        self.counts[topic] += 1

    def close(self) -> Path:
        """Finish the bag and move it to :attr:`path`; returns the path."""
        self._call(self._writer.close)
        return self._output.commit()

    def _abandon(self) -> None:
        try:
            self._writer.close()
        except Exception:  # the half-written bag is removed anyway
            pass
        self._output.discard()

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon()


def remove_bag(path: Path) -> None:
    """Delete a bag directory this project wrote (refuses folders that hold anything else)."""
    import shutil

    path = Path(path)
    if not path.exists():
        return
    if path.is_file():
        path.unlink()
        return
    check_bag_output(path, overwrite=True, option="bag")
    shutil.rmtree(path)
