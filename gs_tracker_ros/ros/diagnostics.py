"""Node statistics (thread-safe counters, latency and rate windows) and their
diagnostic_msgs/DiagnosticArray form.

Counters: ``frames_received`` (image callbacks), ``frames_processed`` (tracked and published),
``frames_dropped`` (replaced in the one-slot mailbox before the worker took them),
``frames_rejected`` (bad encoding / size), ``errors`` (exceptions while tracking),
``stamps_out_of_order`` (an image stamped no later than the previous one), ``stamp_jumps_back``
(of those, stamped before the previous one: the tracker was reset). Latency is image
receipt -> tracks published, over the last :data:`LATENCY_WINDOW` frames. Before the node:
``frames_lost`` (images DDS lost on the way, the subscription's message-lost event) and
``incompatible_qos_events`` (publishers refused for their QoS, the subscription's
incompatible-QoS event). Stale input: the time
since the last image arrived turns the status WARN / ERROR after the node's ``stale_after_s`` /
``stale_error_after_s``, like diagnostic_updater's frequency and time-stamp checks.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

LATENCY_WINDOW = 300
FPS_WINDOW_S = 5.0

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
LOSS_WARN_FRACTION = 0.05  # WARN when more than this fraction of a period's frames was lost by DDS
LOSS_CAUSE = ("likely large images over UDP without shared memory (Fast DDS sends a best-effort image larger "
              "than its 512 KiB shared-memory segment over UDP, in fragments that are dropped); fix: a reliable "
              "camera publisher (image_qos auto then subscribes reliable) or a shared-memory segment that holds "
              "a few images in the camera driver's Fast DDS profile (docs/ros.md#qos)")


class NodeStats:
    """Counters shared by the image callback, the worker thread and the diagnostics timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames_received = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.frames_rejected = 0
        self.errors = 0
        self.overlays_published = 0
        self.camera_info_mismatches = 0
        self.stamps_out_of_order = 0
        self.stamp_jumps_back = 0
        self.frames_lost = 0
        self.incompatible_qos_events = 0
        self.last_incompatible_qos = ""
        self._received_at_incompatible = 0
        self.live_tracks = 0
        self.visible_tracks = 0
        self.last_error = ""
        self._last_error_time = -1e18
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._done_times: deque[float] = deque(maxlen=4096)  # > FPS_WINDOW_S x any camera rate
        self._start = time.monotonic()
        self._last_receipt: float | None = None  # monotonic time of the newest image callback
        self._period_start = self._start
        # dropped, rejected, errors, mismatches, received, lost, incompatible at period start
        self._period_counts = (0, 0, 0, 0, 0, 0, 0)

    # ------------------------------------------------------------------ updates
    def received(self) -> None:
        with self._lock:
            self.frames_received += 1
            self._last_receipt = time.monotonic()

    def stamp_out_of_order(self) -> None:
        with self._lock:
            self.stamps_out_of_order += 1

    def jumped_back(self) -> None:
        """An image stamped before the previous one (counted in stamps_out_of_order too): the
        tracker was reset."""
        with self._lock:
            self.stamp_jumps_back += 1

    def lost(self, n: int) -> None:
        """``n`` images lost by DDS before they reached the node (message-lost event)."""
        with self._lock:
            self.frames_lost += int(n)

    def incompatible_qos(self, reason: str) -> None:
        """A publisher was refused for its QoS (incompatible-QoS event); ``reason`` says which."""
        with self._lock:
            self.incompatible_qos_events += 1
            self.last_incompatible_qos = reason
            self._received_at_incompatible = self.frames_received

    def dropped(self, n: int = 1) -> None:
        with self._lock:
            self.frames_dropped += n

    def rejected(self, reason: str) -> None:
        with self._lock:
            self.frames_rejected += 1
            self._set_error(reason)

    def error(self, reason: str) -> None:
        with self._lock:
            self.errors += 1
            self._set_error(reason)

    def camera_info_mismatch(self, reason: str) -> None:
        with self._lock:
            self.camera_info_mismatches += 1
            self._set_error(reason)

    def _set_error(self, reason: str) -> None:
        self.last_error = reason
        self._last_error_time = time.monotonic()

    def processed(self, latency_s: float, live: int, visible: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_processed += 1
            self._latency_ms.append(latency_s * 1000.0)
            self._done_times.append(now)
            self.live_tracks = int(live)
            self.visible_tracks = int(visible)

    def overlay(self) -> None:
        with self._lock:
            self.overlays_published += 1

    def tracks_changed(self, live: int) -> None:
        with self._lock:
            self.live_tracks = int(live)
            if live == 0:
                self.visible_tracks = 0

    # ------------------------------------------------------------------ reading
    def snapshot(self, end_period: bool = False) -> dict[str, Any]:
        """Current values; ``fps`` over the last 5 s. ``end_period`` starts a new status period
        (the level reports what happened since the previous period)."""
        now = time.monotonic()
        with self._lock:
            lat = np.asarray(self._latency_ms, np.float64)
            window = min(FPS_WINDOW_S, max(now - self._start, 1e-3))
            fps = sum(1 for t in self._done_times if now - t <= window) / window
            counts = (self.frames_dropped, self.frames_rejected, self.errors, self.camera_info_mismatches,
                      self.frames_received, self.frames_lost, self.incompatible_qos_events)
            since = tuple(c - p for c, p in zip(counts, self._period_counts))
            if end_period:
                self._period_counts = counts
                self._period_start = now
            return {
                "fps": fps,
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "frames_received": self.frames_received,
                "frames_processed": self.frames_processed,
                "frames_dropped": self.frames_dropped,
                "frames_rejected": self.frames_rejected,
                "errors": self.errors,
                "overlays_published": self.overlays_published,
                "camera_info_mismatches": self.camera_info_mismatches,
                "stamps_out_of_order": self.stamps_out_of_order,
                "stamp_jumps_back": self.stamp_jumps_back,
                "frames_lost": self.frames_lost,
                "incompatible_qos_events": self.incompatible_qos_events,
                "last_incompatible_qos": self.last_incompatible_qos,
                # no image since the last incompatible publisher appeared: it is likely why
                "starved_by_incompatible_qos": bool(self.incompatible_qos_events)
                and self.frames_received == self._received_at_incompatible,
                "seconds_since_last_image": (now - self._last_receipt) if self._last_receipt is not None
                else float("nan"),
                "live_tracks": self.live_tracks,
                "visible_tracks": self.visible_tracks,
                "last_error": self.last_error,
                "seconds_since_last_error": (now - self._last_error_time) if self.last_error else float("nan"),
                "dropped_in_period": since[0],
                "rejected_in_period": since[1],
                "errors_in_period": since[2],
                "mismatches_in_period": since[3],
                "received_in_period": since[4],
                "lost_in_period": since[5],
                "incompatible_in_period": since[6],
            }


def status_level(snap: dict[str, Any], stale_after_s: float = math.inf,
                 stale_error_after_s: float = math.inf) -> tuple[int, str]:
    """(level, message) for a snapshot. ERROR if tracking raised in the period or no image arrived
    for ``stale_error_after_s``; WARN on rejected images, camera_info mismatches, a publisher
    refused for its QoS (in the period, or no image since), more than :data:`LOSS_WARN_FRACTION`
    of the period's frames lost by DDS (with :data:`LOSS_CAUSE`), no image yet, no image for
    ``stale_after_s``, or dropped frames in the period; else OK."""
    since = snap["seconds_since_last_image"]
    stale = f"no image for {since:.1f} s: the camera (or its driver, or the network) has stalled"
    if snap["errors_in_period"]:
        return ERROR, f"{snap['errors_in_period']} tracking error(s): {snap['last_error']}"
    if since >= stale_error_after_s:  # NaN (no image yet) compares False
        return ERROR, stale
    if snap["rejected_in_period"]:
        return WARN, f"{snap['rejected_in_period']} image(s) rejected: {snap['last_error']}"
    if snap["mismatches_in_period"]:
        return WARN, f"camera_info does not match the images: {snap['last_error']}"
    if snap["incompatible_in_period"] or snap["starved_by_incompatible_qos"]:
        return WARN, snap["last_incompatible_qos"]
    lost, got = snap["lost_in_period"], snap["received_in_period"]
    if lost > LOSS_WARN_FRACTION * (lost + got):
        return WARN, (f"{lost} of {lost + got} image(s) ({100.0 * lost / (lost + got):.0f} %) lost before "
                      f"reaching the node: {LOSS_CAUSE}")
    if snap["frames_received"] == 0:
        return WARN, "no image received yet"
    if since >= stale_after_s:
        return WARN, stale
    if snap["dropped_in_period"]:
        return WARN, f"{snap['dropped_in_period']} frame(s) dropped (processing slower than the camera)"
    return OK, f"tracking {snap['live_tracks']} point(s) at {snap['fps']:.1f} fps"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.3f}"
    return str(v)


def diagnostic_array(snap: dict[str, Any], stamp: Any, name: str, hardware_id: str = "",
                     extra: dict[str, Any] | None = None, stale_after_s: float = math.inf,
                     stale_error_after_s: float = math.inf, not_tracking: str | None = None):
    """A diagnostic_msgs/DiagnosticArray with one status ``name`` holding the snapshot (level from
    :func:`status_level` with the stale-input thresholds in seconds). ``not_tracking``: the node is
    deliberately not tracking (a lifecycle state other than active): level OK with that message."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    level, message = (OK, not_tracking) if not_tracking else status_level(snap, stale_after_s, stale_error_after_s)
    status = DiagnosticStatus(level=bytes([level]), name=name, message=message, hardware_id=hardware_id)
    keys = ("fps", "latency_p50_ms", "latency_p95_ms", "frames_received", "frames_processed", "frames_dropped",
            "frames_rejected", "errors", "live_tracks", "visible_tracks", "overlays_published",
            "camera_info_mismatches", "stamps_out_of_order", "stamp_jumps_back", "frames_lost",
            "incompatible_qos_events", "seconds_since_last_image", "last_error")
    values = [KeyValue(key=k, value=_fmt(snap[k])) for k in keys]
    for k, v in (extra or {}).items():
        values.append(KeyValue(key=k, value=_fmt(v)))
    status.values = values
    arr = DiagnosticArray()
    arr.header.stamp = stamp
    arr.status = [status]
    return arr


def parse_status(status) -> dict[str, str]:
    """``{key: value}`` of a received DiagnosticStatus (tests, tools)."""
    return {kv.key: kv.value for kv in status.values}
