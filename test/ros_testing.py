"""Helpers to drive a running ``gs_tracker_node`` from another process over DDS (tests, smoke
checks): a moving-texture image source with exact ground truth, a node subprocess wrapper with
log capture and RSS, and an rclpy client that publishes images, collects tracks / overlays /
diagnostics and calls the services, every wait bounded by a timeout.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import pytest

from gs_tracker_ros.ros.process import NodeProcess  # noqa: F401 - re-exported for the tests
from gs_tracker_ros.ros.service_calls import RESEND_S, ServiceLink, call_service

DEFAULT_TIMEOUT_S = 15.0


# --------------------------------------------------------------------------------------------- images
class MovingTexture:
    """Frames of a smooth random texture translated by an integer ``velocity`` (px / frame).

    Frame ``t`` is a crop of a larger canvas, so a point at ``p`` on frame ``t0`` is exactly at
    ``p + velocity * (t - t0)`` on frame ``t`` (no interpolation involved).
    """

    def __init__(self, width: int = 160, height: int = 120, velocity: tuple[int, int] = (2, 1),
                 num_frames: int = 64, seed: int = 0) -> None:
        self.width, self.height = int(width), int(height)
        self.velocity = (int(velocity[0]), int(velocity[1]))
        self.num_frames = int(num_frames)
        mx = abs(self.velocity[0]) * self.num_frames + 2
        my = abs(self.velocity[1]) * self.num_frames + 2
        rng = np.random.default_rng(seed)
        noise = rng.random((self.height + my, self.width + mx, 3)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
        lo, hi = smooth.min(), smooth.max()
        self.canvas = ((smooth - lo) / (hi - lo) * 255.0).astype(np.uint8)
        # origin of frame 0 in the canvas: content moves by +velocity, so the crop moves by -velocity
        self._ox = mx - 1 if self.velocity[0] > 0 else 1
        self._oy = my - 1 if self.velocity[1] > 0 else 1

    def frame(self, t: int) -> np.ndarray:
        """RGB ``(H, W, 3) uint8`` frame ``t``."""
        if not 0 <= t < self.num_frames:
            raise IndexError(f"frame {t} outside [0, {self.num_frames})")
        x0 = self._ox - self.velocity[0] * t
        y0 = self._oy - self.velocity[1] * t
        return np.ascontiguousarray(self.canvas[y0:y0 + self.height, x0:x0 + self.width])

    def truth(self, xy: np.ndarray, t0: int, t: int) -> np.ndarray:
        """Exact positions on frame ``t`` of points ``xy (N, 2)`` placed on frame ``t0``."""
        return np.asarray(xy, np.float64) + np.asarray(self.velocity, np.float64) * (t - t0)


def stamp_of(msg: Any) -> tuple[int, int]:
    return int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)


# --------------------------------------------------------------------------------------------- client
# Marks of a test module that talks to a node over DDS: `pytestmark = DDS_TEST_MARKS`.
DDS_TEST_MARKS = [
    pytest.mark.ros,
    pytest.mark.slow,
    # rclpy's default incompatible-QoS handler (a best-effort publisher briefly meeting a reliable
    # reader) uses logger.warn
    pytest.mark.filterwarnings("ignore:Deprecated in favor of:DeprecationWarning"),
]


class SpunNode:
    """An rclpy node of this process spun by a single-threaded executor in a daemon thread.

    Subclasses create ``self.node`` and its endpoints, then call :meth:`start_spinning`.
    """

    node: Any

    def start_spinning(self) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=self.node.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context shut down (ExternalShutdownException and the like)
            pass

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5)
        self.node.destroy_node()
        self._thread.join(5)


class TrackerClient(SpunNode):
    """An rclpy node (spun in a background thread) that talks to a gs_tracker_node.

    Args:
        context: an initialised rclpy Context (same ROS_DOMAIN_ID as the node).
        image_topic / tracks_topic / overlay_topic: absolute topic names.
        service_prefix: the node's private namespace, e.g. ``/ns/gs_tracker_node``.
    """

    def __init__(self, context: Any, image_topic: str, tracks_topic: str, service_prefix: str,
                 overlay_topic: str | None = None, name: str = "gs_tracker_test_client") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_srvs.srv import Trigger

        from gs_tracker_ros.msg import PointTrackArray
        from gs_tracker_ros.srv import AddQueries, RemoveQueries

        self.node = rclpy.create_node(name, context=context)
        self.status_name = service_prefix + ": tracker"  # the node's DiagnosticStatus name
        self._cv = threading.Condition()
        self.tracks: dict[tuple[int, int], Any] = {}
        self.tracks_order: list[tuple[int, int]] = []
        self.overlays: dict[tuple[int, int], Any] = {}
        self.diagnostics: list[Any] = []
        self._mine_total = 0  # statuses of our node received so far
        self.image_topic = image_topic
        self.pub_best_effort = self.node.create_publisher(Image, image_topic, qos_profile_sensor_data)
        self.pub_reliable = self.node.create_publisher(
            Image, image_topic, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.tracks_sub = self.node.create_subscription(PointTrackArray, tracks_topic, self._on_tracks, 50)
        self.diag_sub = self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.overlay_topic = overlay_topic
        self.overlay_sub = None
        self._image_type = Image
        self.add_cli = self.node.create_client(AddQueries, service_prefix + "/add_queries")
        self.remove_cli = self.node.create_client(RemoveQueries, service_prefix + "/remove_queries")
        self.reset_cli = self.node.create_client(Trigger, service_prefix + "/reset")
        # empty requests change nothing on the node: they confirm the reply path (service_calls)
        self.add_link = ServiceLink(self.add_cli, AddQueries.Request)
        self.remove_link = ServiceLink(self.remove_cli, RemoveQueries.Request)
        self._types = dict(AddQueries=AddQueries, RemoveQueries=RemoveQueries, Trigger=Trigger)
        self.start_spinning()

    # ------------------------------------------------------------------------------------- receiving
    def _on_tracks(self, msg: Any) -> None:
        with self._cv:
            key = stamp_of(msg)
            self.tracks[key] = msg
            self.tracks_order.append(key)
            if len(self.tracks_order) > 2000:
                old = self.tracks_order.pop(0)
                if old not in self.tracks_order:
                    self.tracks.pop(old, None)
            self._cv.notify_all()

    def _on_overlay(self, msg: Any) -> None:
        with self._cv:
            self.overlays[stamp_of(msg)] = msg
            self._cv.notify_all()

    def _on_diag(self, msg: Any) -> None:
        with self._cv:
            self._mine_total += sum(1 for st in msg.status if st.name == self.status_name)
            self.diagnostics.append(msg)
            del self.diagnostics[:-20]
            self._cv.notify_all()

    def subscribe_overlay(self) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.overlay_sub = self.node.create_subscription(
            self._image_type, self.overlay_topic, self._on_overlay, QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))

    def unsubscribe_overlay(self) -> None:
        if self.overlay_sub is not None:
            self.node.destroy_subscription(self.overlay_sub)
            self.overlay_sub = None

    def wait_for(self, predicate: Callable[[], Any], timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        """Wait until ``predicate()`` (called under the lock) is truthy; its value, or None on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(min(left, 0.2))

    def latest_diagnostics(self, fresh: bool = True, timeout_s: float = 5.0) -> dict[str, str] | None:
        """Key/values (plus ``_level``, ``_message``) of the node's newest tracker status; with
        ``fresh``, one received after this call. None on timeout."""
        from gs_tracker_ros.ros.diagnostics import parse_status

        with self._cv:
            n0 = self._mine_total if fresh else 0
        if self.wait_for(lambda: self._mine_total > n0 or None, timeout_s) is None:
            return None
        with self._cv:
            for arr in reversed(self.diagnostics):
                for st in arr.status:
                    if st.name == self.status_name:
                        out = parse_status(st)
                        level = st.level
                        out["_level"] = level[0] if isinstance(level, (bytes, bytearray)) else int(level)
                        out["_message"] = st.message
                        return out
        return None

    # ------------------------------------------------------------------------------------- sending
    def image_msg(self, rgb: np.ndarray, stamp: tuple[int, int], frame_id: str = "test_cam",
                  encoding: str = "rgb8") -> Any:
        from gs_tracker_ros.ros.image_conversion import numpy_to_image

        if encoding == "rgb8":
            px = rgb
        elif encoding == "bgr8":
            px = rgb[:, :, ::-1]
        elif encoding == "mono8":
            px = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        else:
            raise ValueError(encoding)
        msg = numpy_to_image(px, encoding)
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
        msg.header.frame_id = frame_id
        return msg

    def publish(self, msg: Any, reliable: bool = False) -> None:
        (self.pub_reliable if reliable else self.pub_best_effort).publish(msg)

    def wait_for_subscriber(self, reliable: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
        pub = self.pub_reliable if reliable else self.pub_best_effort
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pub.get_subscription_count() > 0:
                return True
            time.sleep(0.05)
        return False

    def send_and_wait(self, msg: Any, reliable: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                      resend_s: float = 1.0) -> Any:
        """Publish ``msg`` until tracks with its stamp arrive (re-sent every ``resend_s`` while none
        did: the first samples after discovery can be lost); those tracks, or None on timeout."""
        key = stamp_of(msg)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.publish(msg, reliable)
            got = self.wait_for(lambda: self.tracks.get(key), min(resend_s, max(0.0, deadline - time.monotonic())))
            if got is not None:
                return got
        return None

    # ------------------------------------------------------------------------------------- services
    def add_queries(self, x: Sequence[float], y: Sequence[float], timeout_s: float = DEFAULT_TIMEOUT_S,
                    stamp: tuple[int, int] | None = None) -> Any:
        """``stamp``: (sec, nanosec) of the image the points are on (None: the most recent one)."""
        req = self._types["AddQueries"].Request()
        req.x = [float(v) for v in x]
        req.y = [float(v) for v in y]
        if stamp is not None:
            req.stamp.sec, req.stamp.nanosec = int(stamp[0]), int(stamp[1])
        return self.add_link.call(req, timeout_s, f"{len(req.x)} point(s)")

    def remove_queries(self, ids: Sequence[int], timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        req = self._types["RemoveQueries"].Request()
        req.ids = [int(i) for i in ids]
        return self.remove_link.call(req, timeout_s, f"{len(req.ids)} id(s)")

    def reset(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        return call_service(self.reset_cli, self._types["Trigger"].Request(), timeout_s, "reset", resend_s=RESEND_S)


def tracks_arrays(msg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, xy (N, 2), variance, visible)`` of a PointTrackArray."""
    ids = np.array([t.id for t in msg.tracks], np.int64)
    xy = np.array([[t.x, t.y] for t in msg.tracks], np.float64).reshape(-1, 2)
    var = np.array([t.variance for t in msg.tracks], np.float64)
    vis = np.array([t.visible for t in msg.tracks], bool)
    return ids, xy, var, vis
