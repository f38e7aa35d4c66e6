"""The node's default image QoS over DDS (issue 27): with its default parameters it takes every
frame a reliable camera sends, still receives a best-effort camera's frames and reports what DDS
loses.

One node (a separate process, the shipped config/tracker.yaml, image_qos auto, default Fast DDS
settings: no shared-memory profile) and, in this process, a camera that publishes 640x480 rgb8
(900 KiB) at 30 Hz: first reliable (as image_transport publishes by default), then best effort
(as many drivers do). The node re-subscribes between the two (auto re-checks the publishers).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")

from gs_tracker_ros.ros.diagnostics import parse_status
from ros_testing import DDS_TEST_MARKS, NodeProcess, SpunNode

# the camera's publisher, switched to best effort, briefly meets the node's reliable reader
# before auto re-subscribes (the warning DDS_TEST_MARKS ignores)
pytestmark = DDS_TEST_MARKS

REPO = Path(__file__).resolve().parents[1]
MATCH_TIMEOUT_S = 20.0
RATE_HZ = 30.0


@pytest.fixture
def default_dds(monkeypatch):
    """No Fast DDS XML profile in this process or the node's (an earlier test may have set one)."""
    for key in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        monkeypatch.delenv(key, raising=False)


class Camera(SpunNode):
    """An rclpy node in this process: one image publisher of the given reliability, and the
    node's /diagnostics status."""

    def __init__(self, context, topic: str, status_name: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.node = rclpy.create_node(f"camera_{random.SystemRandom().getrandbits(24):06x}", context=context)
        self.topic, self.status_name, self.pub = topic, status_name, None
        self.statuses: list[dict[str, str]] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.start_spinning()

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name == self.status_name:
                d = parse_status(st)
                d["_level"], d["_message"] = st.level[0], st.message
                self.statuses.append(d)

    def publisher(self, reliable: bool) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        if self.pub is not None:
            self.node.destroy_publisher(self.pub)
        reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        self.pub = self.node.create_publisher(Image, self.topic, QoSProfile(depth=10, reliability=reliability))

    def node_subscribes(self, reliable: bool) -> bool:
        """Wait until the tracker's subscription on the topic has the given reliability."""
        from rclpy.qos import ReliabilityPolicy

        want = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while time.monotonic() < deadline:
            subs = [i for i in self.node.get_subscriptions_info_by_topic(self.topic) if i.node_name == "gs_tracker_node"]
            if len(subs) == 1 and subs[0].qos_profile.reliability == want and self.pub.get_subscription_count() == 1:
                return True
            time.sleep(0.05)
        return False

    def stream(self, width: int, height: int, frames: int, first_stamp: int) -> None:
        """``frames`` rgb8 images at 30 Hz (stamps first_stamp, first_stamp + 1, ... s)."""
        from gs_tracker_ros.ros.image_conversion import numpy_to_image

        rgb = np.random.default_rng(width).integers(0, 255, (height, width, 3), dtype=np.uint8)
        msg = numpy_to_image(rgb, "rgb8")
        msg.header.frame_id = "cam"
        t0 = time.monotonic()
        for k in range(frames):
            msg.header.stamp.sec = first_stamp + k
            self.pub.publish(msg)
            time.sleep(max(0.0, t0 + (k + 1) / RATE_HZ - time.monotonic()))

    def status(self, timeout_s: float = 5.0) -> dict[str, str]:
        """A status published after this call."""
        n0 = len(self.statuses)
        deadline = time.monotonic() + timeout_s
        while len(self.statuses) <= n0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.statuses) > n0, "no /diagnostics status from the node"
        return self.statuses[-1]

    def settled(self, key: str = "frames_received", timeout_s: float = 5.0) -> dict[str, str]:
        """The status once ``key`` stopped changing (two statuses alike)."""
        deadline = time.monotonic() + timeout_s
        last = self.status()
        while time.monotonic() < deadline:
            d = self.status()
            if d[key] == last[key]:
                return d
            last = d
        return last


def test_default_qos_takes_every_reliable_frame_and_reports_best_effort_loss(default_dds, ros_env, ros_context,
                                                                            tmp_path):
    ns = f"/qos_{random.SystemRandom().getrandbits(32):08x}"
    topic = f"{ns}/camera/image_raw"
    node = NodeProcess.node(["-r", f"__ns:={ns}", "--params-file", str(REPO / "config" / "tracker.yaml"),
                             "-r", "image:=camera/image_raw"], ros_env, tmp_path / "node.log")
    cam = None
    try:
        cam = Camera(ros_context, topic, f"{ns}/gs_tracker_node: tracker")
        # a reliable camera: auto subscribes reliable
        cam.publisher(reliable=True)
        assert cam.node_subscribes(reliable=True), node.log_text()[-3000:]
        before = int(cam.status(timeout_s=10)["frames_received"])
        cam.stream(640, 480, 150, first_stamp=100)
        d = cam.settled()
        received = int(d["frames_received"]) - before
        print(f"reliable camera: {received} of 150 frames 640x480 rgb8 at 30 Hz received, "
              f"{d['frames_lost']} lost, image_qos {d['image_qos']}")
        assert received >= 149, (received, d)  # >= 99 %
        assert d["image_qos"] == "auto: reliable, keep last 5", d
        assert int(d["frames_lost"]) == 0 and int(d["incompatible_qos_events"]) == 0, d

        # the camera comes back best effort: auto follows it (no QoS incompatibility), small
        # frames arrive, large ones are lost on the way and that is reported
        cam.publisher(reliable=False)
        assert cam.node_subscribes(reliable=False), node.log_text()[-3000:]
        before = int(cam.status()["frames_received"])
        cam.stream(320, 240, 30, first_stamp=300)
        got_small = int(cam.settled()["frames_received"]) - before
        n0 = len(cam.statuses)
        cam.stream(640, 480, 60, first_stamp=400)
        d = cam.settled(key="frames_lost")
        during = cam.statuses[n0:]
        print(f"best-effort camera: {got_small} of 30 frames 320x240 received; 60 frames 640x480: "
              f"{int(d['frames_received']) - before - got_small} received, {d['frames_lost']} lost")
        assert got_small >= 25, got_small
        # how many large frames UDP drops depends on the machine's load (59 of 60 on an idle one, 12
        # under a full test run): what must hold is that a loss above 5 % is counted and reported
        assert int(d["frames_lost"]) >= 3, d
        warned = [s for s in during if s["_level"] == 1 and "lost before reaching the node" in s["_message"]]
        assert warned, [s["_message"] for s in during]
        assert "large images over UDP without shared memory" in warned[0]["_message"]
        assert "reliable camera publisher" in warned[0]["_message"]  # the fix
        assert int(d["incompatible_qos_events"]) == 0, d
    finally:
        if cam is not None:
            cam.close()
        rc = node.stop()
    log = node.log_text()
    assert rc == 0 and "Traceback" not in log, log[-3000:]
    assert "incompatible QoS" not in log, log[-3000:]
    choice = [ln for ln in log.splitlines() if "image QoS (image_qos auto)" in ln]
    assert len(choice) in (2, 3), choice  # [best effort until the camera was seen,] reliable, best effort
    assert "the publisher of '" + topic + "' is reliable" in choice[-2], choice
    assert "subscribing again, best effort, keep last 5: the publisher of" in choice[-1], choice
