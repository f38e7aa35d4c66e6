"""rclpy side of the replay evaluation: receive (and keep) the tracker node's ``tracks`` as raw
CDR bytes with their receipt times, and talk to the node's services.

:class:`TracksListener` subscribes with ``raw=True`` so the bytes can be written to a bag exactly
as received; the header stamp is read straight from the CDR bytes for matching tracks to images.
:class:`TrackerNodeClient` wraps ``~/add_queries``, ``~/reset`` and ``get_parameters`` (through
:mod:`gs_tracker_ros.ros.service_calls`, so that no reply is lost to service discovery).
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

from .service_calls import RESEND_S, ServiceError, ServiceLink, call_service

__all__ = ["Received", "ServiceError", "TrackerNodeClient", "TracksListener", "cdr_header_stamp_ns"]


def cdr_header_stamp_ns(raw: bytes) -> int:
    """Header stamp (ns) of a message whose first field is a std_msgs/Header, from its CDR bytes
    (4-byte encapsulation, then int32 sec, uint32 nanosec, in the encapsulation's byte order)."""
    if len(raw) < 12:
        raise ValueError(f"CDR message too short ({len(raw)} bytes)")
    little = raw[1] & 1 == 1
    sec, nsec = struct.unpack_from("<iI" if little else ">iI", raw, 4)
    return sec * 1_000_000_000 + nsec


@dataclass
class Received:
    """One tracks message: its header stamp, receipt times and the bytes as received."""

    stamp_ns: int
    mono_s: float  # time.monotonic() at receipt
    wall_ns: int  # time.time_ns() at receipt
    raw: bytes


class TracksListener:
    """Subscribe to a PointTrackArray topic and keep every message (first one per stamp is
    indexed for :meth:`wait_for`)."""

    def __init__(self, node, topic: str, qos: Any) -> None:
        from gs_tracker_ros.msg import PointTrackArray

        self.messages: list[Received] = []
        self.by_stamp: dict[int, Received] = {}
        self._cond = threading.Condition()
        self.subscription = node.create_subscription(PointTrackArray, topic, self._on_msg, qos, raw=True)
        self._node = node

    def _on_msg(self, raw: bytes) -> None:
        mono, wall = time.monotonic(), time.time_ns()
        try:
            stamp = cdr_header_stamp_ns(raw)
        except ValueError:
            return
        item = Received(stamp, mono, wall, bytes(raw))
        with self._cond:
            self.messages.append(item)
            self.by_stamp.setdefault(stamp, item)
            self._cond.notify_all()

    def publisher_count(self) -> int:
        if hasattr(self.subscription, "get_publisher_count"):
            return int(self.subscription.get_publisher_count())
        return int(self._node.count_publishers(self.subscription.topic_name))

    def wait_for(self, stamp_ns: int, timeout_s: float) -> Received | None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while stamp_ns not in self.by_stamp:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))
            return self.by_stamp[stamp_ns]

    def count(self) -> int:
        with self._cond:
            return len(self.messages)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()
            self.by_stamp.clear()


class TrackerNodeClient:
    """Client for the tracker node's services, addressed by the node's fully qualified name."""

    def __init__(self, node, target: str) -> None:
        from rcl_interfaces.srv import GetParameters
        from std_srvs.srv import Trigger

        from gs_tracker_ros.srv import AddQueries

        self.target = target.rstrip("/")
        self._add = ServiceLink(node.create_client(AddQueries, f"{self.target}/add_queries"), AddQueries.Request)
        self._reset = node.create_client(Trigger, f"{self.target}/reset")
        self._params = node.create_client(GetParameters, f"{self.target}/get_parameters")
        self._AddQueries, self._Trigger, self._GetParameters = AddQueries, Trigger, GetParameters

    def services_ready(self) -> bool:
        return self._add.client.service_is_ready() and self._reset.service_is_ready()

    def add_queries(self, xy, timeout_s: float = 10.0) -> list[int]:
        req = self._AddQueries.Request()
        req.x = [float(p[0]) for p in xy]
        req.y = [float(p[1]) for p in xy]
        resp = self._add.call(req, timeout_s, f"{len(req.x)} queries")
        if not resp.success:
            raise ServiceError(f"{self._add.srv_name} refused {len(req.x)} queries: {resp.message}")
        ids = [int(i) for i in resp.ids]
        if len(ids) != len(req.x):
            raise ServiceError(f"{self._add.srv_name} returned {len(ids)} ids for {len(req.x)} queries")
        return ids

    def reset(self, timeout_s: float = 10.0) -> None:
        resp = call_service(self._reset, self._Trigger.Request(), timeout_s, "reset", resend_s=RESEND_S)
        if not resp.success:
            raise ServiceError(f"{self._reset.srv_name} failed: {resp.message}")

    def get_parameter(self, name: str, timeout_s: float = 5.0) -> Any:
        """Value of one parameter of the node (None if unset or not answerable)."""
        req = self._GetParameters.Request()
        req.names = [name]
        try:
            resp = call_service(self._params, req, timeout_s, f"get {name}", resend_s=RESEND_S)
        except ServiceError:
            return None
        if not resp.values:
            return None
        v = resp.values[0]
        return {1: v.bool_value, 2: v.integer_value, 3: v.double_value, 4: v.string_value}.get(v.type)
