"""rclpy side of bag playback: publishers for recorded CDR bytes (QoS: :mod:`.qos`), waiting for
subscribers, and a timed publishing loop that behaves like ``ros2 bag play``.

Messages are published as the serialized bytes read from the bag (``Publisher.publish(bytes)``
hands them to the middleware as-is), through a publisher of the message class named by the bag's
type string (``sensor_msgs/msg/Image`` -> ``sensor_msgs.msg.Image``). Nothing is deserialised.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ..core.errors import InputError


# Fast DDS participant profile used by the publishing side of bag playback. Fast DDS's default
# shared-memory segment (512 KiB) cannot hold a camera image (854x480 rgb8 = 1.2 MB), so such
# messages fall back to fragmented UDP on the loopback: measured here ~20-25 ms per image instead
# of ~2-3 ms with a segment that holds a few images. Only the sending participant needs it.
_FASTDDS_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<!-- written by gs_tracker_ros.ros.bag_player: shared memory sized for camera images -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>gs_tracker_shm</transport_id>
        <type>SHM</type>
        <segment_size>{segment}</segment_size>
        <maxMessageSize>{message}</maxMessageSize>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>gs_tracker_udp</transport_id>
        <type>UDPv4</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="gs_tracker_large_data" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>gs_tracker_shm</transport_id>
          <transport_id>gs_tracker_udp</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


def configure_large_messages(max_message_bytes: int) -> str | None:
    """Give this process's Fast DDS participants a shared-memory transport big enough for
    messages of ``max_message_bytes`` (see :data:`_FASTDDS_PROFILE`). Must run before the first
    rclpy context of the process is initialised. Does nothing (returns None) when another RMW is
    selected, when FASTDDS_DEFAULT_PROFILES_FILE is already set (the user's profile wins), or for
    messages that fit the default segment; otherwise returns the profile path it set."""
    import os
    import tempfile
    from pathlib import Path

    from ..core.output import write_text

    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") or "rmw_fastrtps_cpp"
    if rmw != "rmw_fastrtps_cpp" or os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        return None
    if max_message_bytes <= 256 * 1024:
        return None
    mib = 1024 * 1024
    message = int(-(-(max_message_bytes + 64 * 1024) // mib) * mib)
    segment = int(min(max(8 * mib, 6 * message), 512 * mib))
    message = min(message, segment)
    path = Path(tempfile.gettempdir()) / f"gs_tracker_fastdds_shm_{segment // mib}m_{message // mib}m.xml"
    text = _FASTDDS_PROFILE.format(segment=segment, message=message)
    if not path.is_file() or path.read_text() != text:
        write_text(path, text)
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    return str(path)


def message_class(msgtype: str) -> type:
    """The rclpy message class of a type string ``pkg/msg/Name`` (or ``pkg/Name``)."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise InputError(f"malformed message type '{msgtype}'")
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
        return getattr(module, name)
    except (ImportError, AttributeError) as err:
        raise InputError(f"message type {msgtype} is not available to rclpy here ({err}); "
                         "install its package (or run `make setup` for gs_tracker_ros types)") from None


def init_context(domain_id: int | None = None):
    """A fresh, initialised rclpy ``Context`` (not the global one) on ``domain_id`` (None = the
    ROS_DOMAIN_ID of the environment)."""
    import rclpy

    context = rclpy.Context()
    kwargs = {} if domain_id is None else {"domain_id": int(domain_id)}
    rclpy.init(args=[], context=context, **kwargs)
    return context


def create_node(name: str, context):
    """A plain rclpy node in ``context``."""
    import rclpy

    return rclpy.create_node(name, context=context)


class Spinner:
    """Spin a node in a background thread (subscription callbacks, service responses)."""

    def __init__(self, node, context) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rclpy-spin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down under us
                if self._stop.is_set():
                    return
                raise

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        try:
            self.executor.shutdown(timeout_sec=1.0)
        except Exception:  # shutting down: best effort
            pass


def parse_remaps(items: Iterable[str]) -> dict[str, str]:
    """``["FROM:=TO", ...]`` -> ``{FROM: TO}`` (topic names made absolute)."""
    out: dict[str, str] = {}
    for item in items or ():
        if ":=" not in item:
            raise InputError(f"--remap expects FROM:=TO, got '{item}'")
        src, dst = (s.strip() for s in item.split(":=", 1))
        if not src or not dst:
            raise InputError(f"--remap expects FROM:=TO, got '{item}'")
        out[_absolute(src)] = _absolute(dst)
    return out


def _absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


class BagPublishers:
    """One publisher per played topic (after remapping), all with the same QoS."""

    def __init__(self, node, topic_types: dict[str, str], qos: Any, remap: dict[str, str] | None = None) -> None:
        self.node = node
        self.remap = dict(remap or {})
        self.publishers: dict[str, Any] = {}
        for topic, msgtype in topic_types.items():
            self.publishers[topic] = node.create_publisher(message_class(msgtype), self.out_topic(topic), qos)

    def out_topic(self, topic: str) -> str:
        return self.remap.get(topic, topic)

    def publish(self, topic: str, raw: bytes) -> None:
        self.publishers[topic].publish(raw)

    def wait_for_all_acked(self, timeout_s: float) -> None:
        from rclpy.duration import Duration

        for pub in self.publishers.values():
            try:
                pub.wait_for_all_acked(Duration(nanoseconds=int(timeout_s * 1e9)))
            except Exception:  # best effort (e.g. best-effort QoS)
                pass

    def wait_for_subscribers(self, timeout_s: float, topics: Iterable[str] | None = None,
                             require_all: bool = False) -> bool:
        """Wait until one (or, with ``require_all``, each) of ``topics`` (bag names; default all)
        has a subscriber. Returns False on timeout. ``timeout_s`` <= 0 returns at once."""
        names = list(topics) if topics is not None else list(self.publishers)
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            counts = [self.publishers[t].get_subscription_count() > 0 for t in names]
            if (all(counts) if require_all else any(counts)) and counts:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


@dataclass
class PlayStats:
    published: int = 0
    loops: int = 0
    wall_s: float = 0.0
    per_topic: dict[str, int] = field(default_factory=dict)


def sleep_until(target: float, stop: threading.Event | None = None) -> bool:
    """Sleep until ``time.monotonic() >= target``; False if ``stop`` was set meanwhile."""
    while True:
        left = target - time.monotonic()
        if stop is not None and stop.is_set():
            return False
        if left <= 0:
            return True
        time.sleep(min(left, 0.05))


def play(publishers: BagPublishers, messages: Callable[[], Iterator[tuple[str, str, int, bytes]]],
         rate: float = 1.0, loop: bool = False, stop: threading.Event | None = None,
         on_publish: Callable[[str, int, float], None] | None = None) -> PlayStats:
    """Publish ``messages()`` (``(topic, type, log time ns, bytes)`` in log-time order) with the
    recorded spacing divided by ``rate``; ``loop`` starts over after the last message (until
    ``stop``). ``on_publish(topic, log_time_ns, monotonic publish time)`` is called after each."""
    if not rate > 0:
        raise InputError(f"--rate must be > 0, got {rate}")
    stats = PlayStats()
    t_wall0 = time.monotonic()
    while True:
        start = time.monotonic()
        first_ns = None
        for topic, _, log_ns, raw in messages():
            if topic not in publishers.publishers:
                continue
            if first_ns is None:
                first_ns = log_ns
            if not sleep_until(start + (log_ns - first_ns) / 1e9 / rate, stop):
                stats.wall_s = time.monotonic() - t_wall0
                return stats
            publishers.publish(topic, raw)
            now = time.monotonic()
            stats.published += 1
            stats.per_topic[topic] = stats.per_topic.get(topic, 0) + 1
            if on_publish is not None:
                on_publish(topic, log_ns, now)
        stats.loops += 1
        if not loop or first_ns is None or (stop is not None and stop.is_set()):
            break
    stats.wall_s = time.monotonic() - t_wall0
    return stats
