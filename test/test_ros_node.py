"""gs_tracker_node end to end over DDS: the node runs as a subprocess (its own ROS_DOMAIN_ID and
log dir, see conftest.ros_subprocess_env); this process publishes images with exactly known motion,
calls the services and checks tracks, overlay and diagnostics.

One node serves the whole module (start-up and discovery cost seconds on 2 cores); every test
begins with ~/reset. Every wait has a timeout (>= 15 s for the first match); the node is always
stopped in the fixture's finally block.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")

from conftest import ros_subprocess_env

from gs_tracker_ros.msg import PointTrack
from ros_testing import DDS_TEST_MARKS, MovingTexture, NodeProcess, TrackerClient, tracks_arrays

pytestmark = DDS_TEST_MARKS  # the burst test's best-effort check meets a reliable reader

REPO = Path(__file__).resolve().parents[1]
# a random namespace too: another test run that drew the same ROS_DOMAIN_ID stays apart
RUN_ID = f"{random.SystemRandom().getrandbits(32):08x}"
NS = f"/trk_{RUN_ID}"
MATCH_TIMEOUT_S = 20.0
FRAME_ID = "test_cam"


@dataclass
class Rig:
    node: NodeProcess
    cli: TrackerClient
    stamps: itertools.count
    env: dict
    context: object
    tmp: Path

    def stamp(self) -> tuple[int, int]:
        return 1_000 + next(self.stamps), 250_000_000

    def diag(self, timeout_s: float = 5.0) -> dict[str, str]:
        """A status published after this call (so it includes everything sent before it)."""
        time.sleep(0.05)
        d = self.cli.latest_diagnostics(fresh=True, timeout_s=timeout_s)
        assert d is not None, "no /diagnostics status from the node"
        return d

    def settle(self, timeout_s: float = 10.0) -> dict[str, str]:
        """Wait until every received image is accounted for; the final status."""
        deadline = time.monotonic() + timeout_s
        while True:
            d = self.diag()
            total = sum(int(d[k]) for k in ("frames_processed", "frames_dropped", "frames_rejected", "errors"))
            if total == int(d["frames_received"]) or time.monotonic() > deadline:
                return d

    def start_sequence(self, tex: MovingTexture, reliable: bool = False, encoding: str = "rgb8"):
        """Reset the tracker and get frame 0 processed; (stamp of frame 0, its tracks message)."""
        r = self.cli.reset()
        assert r.success, r.message
        s0 = self.stamp()
        m = self.cli.send_and_wait(self.cli.image_msg(tex.frame(0), s0, FRAME_ID, encoding), reliable,
                                   timeout_s=MATCH_TIMEOUT_S)
        assert m is not None, f"no tracks for the first image within {MATCH_TIMEOUT_S} s\n{self.node.log_text()}"
        return s0, m


def _start(ns: str, params: list[str], env: dict, context, log: Path) -> tuple[NodeProcess, TrackerClient]:
    node = NodeProcess.node(["-r", f"__ns:={ns}", *params], env, log, cwd=REPO)
    try:
        cli = TrackerClient(context, f"{ns}/image", f"{ns}/tracks", f"{ns}/gs_tracker_node",
                            overlay_topic=f"{ns}/tracks_image", name="client_" + ns.strip("/"))
    except BaseException:
        node.stop()
        raise
    return node, cli


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ros_node")
    (tmp / "ros_log").mkdir()
    domain = random.SystemRandom().randint(1, 100)
    env = ros_subprocess_env(domain, tmp / "ros_log")
    node = cli = context = None
    with pytest.MonkeyPatch.context() as mp:
        for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR"):
            mp.setenv(key, env[key])
        mp.delenv("ROS_LOCALHOST_ONLY", raising=False)
        try:
            context = rclpy.Context()
            rclpy.init(context=context, domain_id=domain)
            node, cli = _start(NS, ["-p", "max_tracks:=1024"], env, context, tmp / "node.log")
            assert cli.wait_for_subscriber(timeout_s=MATCH_TIMEOUT_S), (
                f"node did not subscribe to {NS}/image within {MATCH_TIMEOUT_S} s\n{node.log_text()}")
            yield Rig(node, cli, itertools.count(), env, context, tmp)
        finally:
            if cli is not None:
                cli.close()
            if node is not None:
                node.stop()
            if context is not None:
                context.try_shutdown()


def _check_header(msg, stamp):
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp
    assert msg.header.frame_id == FRAME_ID


# ------------------------------------------------------------------------------------------ tracking
@pytest.mark.parametrize(
    "reliable,encoding",
    [(False, "rgb8"), (True, "rgb8"), (False, "bgr8"), (True, "mono8")],
    ids=["best_effort-rgb8", "reliable-rgb8", "best_effort-bgr8", "reliable-mono8"],
)
def test_tracks_follow_known_motion(rig, reliable, encoding):
    tex = MovingTexture(160, 120, velocity=(2, -1), num_frames=13, seed=3)
    s0, m0 = rig.start_sequence(tex, reliable, encoding)
    _check_header(m0, s0)
    assert len(m0.tracks) == 0
    q = np.array([[30.0, 40.0], [80.0, 60.0], [50.0, 90.0], [100.0, 35.0], [70.5, 60.25], [20.0, 100.0]])
    r = rig.cli.add_queries(q[:, 0], q[:, 1])
    assert r.success, r.message
    assert len(r.ids) == len(q) and len(set(r.ids)) == len(q)
    assert f"{s0[0]}.{s0[1]:09d}" in r.message  # placed on the latest image
    worst = 0.0
    for t in range(1, tex.num_frames):
        stamp = rig.stamp()
        m = rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(t), stamp, FRAME_ID, encoding), reliable)
        assert m is not None, f"no tracks for frame {t}\n{rig.node.log_text()[-3000:]}"
        _check_header(m, stamp)
        ids, xy, var, vis = tracks_arrays(m)
        assert ids.tolist() == list(r.ids)
        err = np.linalg.norm(xy - tex.truth(q, 0, t), axis=1)
        worst = max(worst, float(err.max()))
        assert vis.all(), f"frame {t}: visible {vis}"
        assert all(tr.status == PointTrack.STATUS_VISIBLE for tr in m.tracks)
        assert (var > 0).all() and np.isfinite(var).all()
    assert worst < 1.0, f"max error {worst:.3f} px"


def test_a_point_leaving_the_image_is_published_out_of_view(rig):
    tex = MovingTexture(160, 120, velocity=(3, 0), num_frames=14, seed=3)
    s0, _ = rig.start_sequence(tex, True, "rgb8")
    q = np.array([[145.0, 60.0], [40.0, 60.0]])  # the first leaves through the right border
    r = rig.cli.add_queries(q[:, 0], q[:, 1])
    assert r.success, r.message
    for t in range(1, tex.num_frames):
        m = rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(t), rig.stamp(), FRAME_ID, "rgb8"), True)
        assert m is not None, f"no tracks for frame {t}\n{rig.node.log_text()[-3000:]}"
    leaving, staying = m.tracks
    assert (leaving.status, leaving.visible) == (PointTrack.STATUS_OUT_OF_VIEW, False)
    assert leaving.x > 159.5  # its estimate went on out of the image
    assert (staying.status, staying.visible) == (PointTrack.STATUS_VISIBLE, True)
    assert abs(staying.x - (40.0 + 3 * (tex.num_frames - 1))) < 1.0


def test_points_picked_on_an_earlier_image_are_tracked_to_the_newest(rig):
    """AddQueries.stamp: a detector that ran on a delayed image hands its points over."""
    tex = MovingTexture(160, 120, velocity=(2, 1), num_frames=10, seed=23)
    s0, _ = rig.start_sequence(tex)
    stamps = [s0]
    for t in range(1, 7):
        stamps.append(rig.stamp())
        assert rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(t), stamps[-1])) is not None
    q = np.array([[40.0, 40.0], [90.0, 60.0], [60.5, 80.25]])
    r = rig.cli.add_queries(q[:, 0], q[:, 1], stamp=stamps[2])  # picked on frame 2, newest is 6
    assert r.success, r.message
    assert f"picked on the image stamped {stamps[2][0]}.{stamps[2][1]:09d} and tracked over 4 image(s)" in r.message
    for t in (7, 8):
        stamp = rig.stamp()
        m = rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(t), stamp))
        assert m is not None
        ids, xy, _var, vis = tracks_arrays(m)
        assert ids.tolist() == list(r.ids) and vis.all()
        err = np.linalg.norm(xy - tex.truth(q, 2, t), axis=1)
        assert err.max() < 1.0, (t, err)  # where the points are now, not where they were on frame 2
    # a stamp the node never saw / no longer holds: a clear failure, nothing added
    bad = rig.cli.add_queries([10.0], [10.0], stamp=(stamps[0][0] - 500, 0))
    assert not bad.success and "no processed image stamped" in bad.message and "query_history=30" in bad.message
    assert len(bad.ids) == 0
    # stamp of the newest image: the same as stamp 0
    newest = rig.cli.add_queries([20.0], [20.0], stamp=stamp)
    assert newest.success and "tracked over" not in newest.message, newest.message


# ------------------------------------------------------------------------------------------ lifecycle
def test_lifecycle_transitions_subscribe_only_while_active(rig):
    """autostart:=false: the node waits unconfigured; the lifecycle services drive it. configure
    builds the tracker and offers the services, activate subscribes and publishes, deactivate and
    cleanup undo that, shutdown finalizes."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    from gs_tracker_ros.ros.service_calls import RESEND_S, ServiceLink, call_service

    ns = f"/life_{RUN_ID}"
    node, cli = _start(ns, ["-p", "autostart:=false"], rig.env, rig.context, rig.tmp / "lifecycle.log")
    fq = f"{ns}/gs_tracker_node"
    get = cli.node.create_client(GetState, f"{fq}/get_state")
    # an empty ChangeState (transition 0, "create") is refused by the state machine: a safe probe
    change = ServiceLink(cli.node.create_client(ChangeState, f"{fq}/change_state"), ChangeState.Request)

    def state() -> str:
        return call_service(get, GetState.Request(), MATCH_TIMEOUT_S, "get_state", resend_s=RESEND_S).current_state.label

    def transition(tid: int) -> None:
        req = ChangeState.Request()
        req.transition.id = tid
        assert change.call(req, MATCH_TIMEOUT_S, f"transition {tid}").success, node.log_text()[-3000:]

    def graph(kind: str) -> set[str]:
        get_names = {"sub": cli.node.get_subscriber_names_and_types_by_node,
                     "pub": cli.node.get_publisher_names_and_types_by_node,
                     "srv": cli.node.get_service_names_and_types_by_node}[kind]
        try:
            return {n for n, _ in get_names("gs_tracker_node", ns)}
        except RuntimeError:  # not discovered yet
            return set()

    def eventually(pred, what: str) -> None:
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while not pred() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pred(), f"{what}: subs {graph('sub')}, pubs {graph('pub')}, services {graph('srv')}"

    try:
        assert state() == "unconfigured"
        eventually(lambda: f"{fq}/change_state" in graph("srv"), "lifecycle services")
        assert f"{ns}/image" not in graph("sub") and f"{fq}/add_queries" not in graph("srv")
        d = cli.latest_diagnostics(timeout_s=10)
        assert d is not None and d["lifecycle_state"] == "unconfigured" and d["_level"] == 0, d
        assert d["_message"].startswith("unconfigured: not tracking"), d

        transition(Transition.TRANSITION_CONFIGURE)
        assert state() == "inactive"
        eventually(lambda: f"{fq}/add_queries" in graph("srv"), "configure offers the services")
        assert f"{ns}/image" not in graph("sub") and f"{ns}/tracks" not in graph("pub")

        transition(Transition.TRANSITION_ACTIVATE)
        assert state() == "active"
        eventually(lambda: f"{ns}/image" in graph("sub") and f"{ns}/tracks" in graph("pub"), "activate subscribes")
        tex = MovingTexture(160, 120, velocity=(1, 0), num_frames=3, seed=29)
        assert cli.wait_for_subscriber(timeout_s=MATCH_TIMEOUT_S)
        assert cli.send_and_wait(cli.image_msg(tex.frame(0), rig.stamp()), timeout_s=MATCH_TIMEOUT_S) is not None

        transition(Transition.TRANSITION_DEACTIVATE)
        assert state() == "inactive"
        eventually(lambda: f"{ns}/image" not in graph("sub") and f"{ns}/tracks" not in graph("pub"),
                   "deactivate unsubscribes")
        assert f"{fq}/add_queries" in graph("srv")  # still configured

        transition(Transition.TRANSITION_CLEANUP)
        assert state() == "unconfigured"
        eventually(lambda: f"{fq}/add_queries" not in graph("srv"), "cleanup releases the services")

        # issue 27: shutdown used to leave the process running, its diagnostics saying "activate"
        transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        try:
            exit_code = node.proc.wait(10)
        except Exception:
            exit_code = None
        assert exit_code == 0, ("the process did not end after shutdown", node.log_text()[-3000:])
        final = cli.latest_diagnostics(fresh=False, timeout_s=1.0)
        assert final is not None and final["lifecycle_state"] == "finalized", final
        assert final["_message"] == "finalized: not tracking (lifecycle shutdown; the process exits)", final
    finally:
        cli.close()
        rc = node.stop()
    assert rc == 0, node.log_text()[-3000:]
    log = node.log_text()
    assert "Traceback" not in log
    for needle in ("configured: method 'probfuse'", "tracking with method", "deactivated: not subscribed",
                   "cleaned up: tracker and services released",
                   "shut down (lifecycle shutdown from 'unconfigured'): not tracking"):
        assert needle in log, log[-3000:]


# ------------------------------------------------------------------------------------------ bursts
def test_burst_is_dropped_counted_and_memory_stays_bounded(rig):
    """640x480 rgb8 (0.9 MB) images: a second node with image_qos=reliable (Fast DDS loses
    best-effort samples above ~0.5 MB between processes, see docs/ros.md), 400 points so that a
    step is slower than the burst, and 200 images sent as fast as possible."""
    node, cli = _start(f"/burst_{RUN_ID}", ["-p", "image_qos:=reliable"], rig.env, rig.context, rig.tmp / "burst.log")
    try:
        sub = Rig(node, cli, rig.stamps, rig.env, rig.context, rig.tmp)
        assert cli.wait_for_subscriber(reliable=True, timeout_s=MATCH_TIMEOUT_S), node.log_text()
        w, h = 640, 480
        tex = MovingTexture(w, h, velocity=(1, 0), num_frames=40, seed=5)
        sub.start_sequence(tex, reliable=True)
        xs, ys = np.meshgrid(np.linspace(40, w - 80, 20), np.linspace(40, h - 40, 20))
        r = cli.add_queries(xs.ravel(), ys.ravel())
        assert r.success, r.message
        for t in range(1, 32):  # fill the frame buffer (longest chain interval) before measuring memory
            assert cli.send_and_wait(cli.image_msg(tex.frame(t), sub.stamp()), reliable=True) is not None
        rss0 = node.rss_mb()
        d0 = sub.settle()
        frames = [cli.image_msg(tex.frame(t), (0, 0)) for t in range(32, 40)]
        sent = 200  # 200 x 0.9 MB: ~180 MB if anything queued them all
        t_burst = time.monotonic()
        rss_peak = rss0
        for k in range(sent):  # ~250 Hz: several images per step (a faster burst only fills DDS queues)
            msg = frames[k % len(frames)]
            msg.header.stamp.sec, msg.header.stamp.nanosec = sub.stamp()
            cli.publish(msg, reliable=True)
            time.sleep(0.004)
            if k % 20 == 0:
                rss_peak = max(rss_peak, node.rss_mb())
        t_burst = time.monotonic() - t_burst
        # still alive, and the next good image is tracked
        after = cli.send_and_wait(cli.image_msg(tex.frame(39), sub.stamp()), reliable=True)
        assert after is not None and len(after.tracks) == 400, node.log_text()[-3000:]
        d1 = sub.settle()
        rss1 = node.rss_mb()
        assert node.alive()

        def delta(key):
            return int(d1[key]) - int(d0[key])

        print(f"burst: {sent} sent in {t_burst:.2f} s; received {delta('frames_received')}, processed "
              f"{delta('frames_processed')}, dropped {delta('frames_dropped')}; RSS {rss0:.0f} -> "
              f"{rss_peak:.0f} -> {rss1:.0f} MiB; latency p50 {d1['latency_p50_ms']} ms")

        assert delta("frames_received") >= 20, (t_burst, d0, d1)
        assert delta("frames_dropped") >= delta("frames_received") // 2, (t_burst, d0, d1)
        assert delta("frames_processed") < sent
        assert delta("errors") == 0, d1["last_error"]
        # every image is accounted for exactly once
        assert int(d1["frames_received"]) == sum(
            int(d1[k]) for k in ("frames_processed", "frames_dropped", "frames_rejected", "errors"))
        assert max(rss_peak, rss1) - rss0 < 30.0, (  # ~8 MiB seen; queuing would add 0.9 MiB per image
            f"RSS grew from {rss0:.0f} to {rss_peak:.0f} / {rss1:.0f} MiB during the burst")
        # image_qos=reliable really is reliable: a best-effort publisher is refused (and logged)
        cli.publish(cli.image_msg(tex.frame(0), sub.stamp()), reliable=False)
        deadline = time.monotonic() + 5
        while "incompatible QoS" not in node.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "incompatible QoS" in node.log_text()
        assert "offers incompatible QoS (reliability): no images from it reach the node; image_qos 'reliable' " \
               "needs a reliable publisher" in node.log_text()
        assert int(sub.diag()["incompatible_qos_events"]) >= 1  # and counted on /diagnostics
    finally:
        cli.close()
        rc = node.stop()
    assert rc == 0, node.log_text()[-3000:]


# ------------------------------------------------------------------------------------------ compressed
def test_compressed_images_are_tracked_and_corrupt_ones_rejected(rig):
    """image_transport:=compressed: sensor_msgs/CompressedImage on <image>/compressed (jpeg, png)."""
    from sensor_msgs.msg import CompressedImage

    from gs_tracker_ros.ros.image_conversion import rgb_to_compressed

    ns = f"/comp_{RUN_ID}"
    node, cli = _start(ns, ["-p", "image_transport:=compressed"], rig.env, rig.context, rig.tmp / "compressed.log")
    pub = cli.node.create_publisher(CompressedImage, f"{ns}/image/compressed", 10)
    try:
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.get_subscription_count() > 0, node.log_text()
        line = f"on '{ns}/image/compressed' (camera_info '{ns}/camera_info')"
        deadline = time.monotonic() + MATCH_TIMEOUT_S  # the log line may come after the DDS match
        while line not in node.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert line in node.log_text(), node.log_text()
        tex = MovingTexture(160, 120, velocity=(1, 1), num_frames=6, seed=19)

        def send(t: int, fmt: str):
            msg = rgb_to_compressed(tex.frame(t), fmt, quality=98)
            stamp = rig.stamp()
            msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
            deadline = time.monotonic() + MATCH_TIMEOUT_S
            while time.monotonic() < deadline:
                pub.publish(msg)
                got = cli.wait_for(lambda: cli.tracks.get(stamp), 1.0)
                if got is not None:
                    return got
            return None

        assert cli.reset().success
        assert send(0, "png") is not None, node.log_text()[-3000:]
        q = np.array([[40.0, 40.0], [100.0, 70.0]])
        r = cli.add_queries(q[:, 0], q[:, 1])
        assert r.success, r.message
        for t, fmt in ((1, "jpeg"), (2, "png"), (3, "jpeg")):
            m = send(t, fmt)
            assert m is not None, node.log_text()[-3000:]
            err = np.linalg.norm(tracks_arrays(m)[1] - tex.truth(q, 0, t), axis=1)
            assert err.max() < 1.5, (fmt, err)  # jpeg at quality 98 barely moves the texture
        sub = Rig(node, cli, rig.stamps, rig.env, rig.context, rig.tmp)
        d0 = sub.settle()
        bad = rgb_to_compressed(tex.frame(4), "jpeg")
        bad.data = bad.data[: len(bad.data) // 3]  # truncated JPEG
        bad.header.stamp.sec, bad.header.stamp.nanosec = rig.stamp()
        pub.publish(bad)
        deadline = time.monotonic() + 10
        d1 = d0
        while int(d1["frames_rejected"]) == int(d0["frames_rejected"]) and time.monotonic() < deadline:
            d1 = sub.diag()
        assert int(d1["frames_rejected"]) == int(d0["frames_rejected"]) + 1, d1
        assert "cannot decode the compressed jpeg image" in node.log_text()
        assert send(5, "jpeg") is not None and node.alive()  # and it goes on
    finally:
        cli.node.destroy_publisher(pub)
        cli.close()
        rc = node.stop()
    assert rc == 0, node.log_text()[-3000:]


# ------------------------------------------------------------------------------------------ bad input
def test_bad_images_are_rejected_with_clear_throttled_warnings(rig):
    from sensor_msgs.msg import CameraInfo, Image

    tex = MovingTexture(160, 120, velocity=(1, 1), num_frames=4, seed=7)
    rig.start_sequence(tex, reliable=True)
    d0 = rig.settle()
    n_bad = 0
    for encoding, step, size in [("yuv422", 320, 320 * 120), ("32FC1", 640, 640 * 120)]:
        for _ in range(6):
            msg = Image(height=120, width=160, encoding=encoding, step=step)
            msg.data = bytes(size)
            msg.header.stamp.sec, msg.header.stamp.nanosec = rig.stamp()
            rig.cli.publish(msg, reliable=True)
            n_bad += 1
            time.sleep(0.03)
    short = rig.cli.image_msg(tex.frame(1), rig.stamp())
    short.data = short.data[:-7]  # data length does not match step x height
    rig.cli.publish(short, reliable=True)
    n_bad += 1
    time.sleep(0.03)
    info = CameraInfo(width=640, height=480)
    info.header.frame_id = FRAME_ID
    publisher = rig.cli.node.create_publisher(CameraInfo, f"{NS}/camera_info", 10)
    try:
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(3):
            publisher.publish(info)
            time.sleep(0.05)
        # the next good image is tracked
        good = rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(2), rig.stamp()), reliable=True)
        assert good is not None, rig.node.log_text()[-3000:]
        d1 = rig.settle()
    finally:
        rig.cli.node.destroy_publisher(publisher)
    assert rig.node.alive()
    rejected = int(d1["frames_rejected"]) - int(d0["frames_rejected"])
    dropped = int(d1["frames_dropped"]) - int(d0["frames_dropped"])
    assert rejected >= 3 and rejected + dropped <= n_bad, (rejected, dropped)
    assert int(d1["errors"]) == int(d0["errors"])
    assert int(d1["camera_info_mismatches"]) > int(d0["camera_info_mismatches"])
    assert d1["camera_info"] == "640x480"
    log = rig.node.log_text()
    for needle in ("unsupported image encoding 'yuv422'", "unsupported image encoding '32FC1'",
                   "expected step x height", "camera_info is 640x480 but the images are 160x120"):
        assert needle in log, f"{needle!r} not in the node's log:\n{log[-3000:]}"
    # throttled: six bad images of one encoding within a second give one warning
    assert log.count("unsupported image encoding 'yuv422'") == 1


def test_bad_service_requests_fail_with_reasons_and_the_node_keeps_tracking(rig):
    tex = MovingTexture(160, 120, velocity=(1, 0), num_frames=4, seed=9)
    r = rig.cli.reset()
    assert r.success
    r = rig.cli.add_queries([10.0], [10.0])
    assert not r.success and "no image received yet" in r.message
    rig.start_sequence(tex)
    cases = [
        (([float("nan"), 5.0], [5.0, 5.0]), "NaN"),
        (([5.0], [float("inf")]), "NaN or infinite"),
        (([500.0], [5.0]), "outside the 160x120 image"),
        (([-3.0], [5.0]), "outside"),
        (([1.0, 2.0], [1.0]), "same length"),
        ((list(np.full(1025, 5.0)), list(np.full(1025, 5.0))), "max_tracks=1024"),
    ]
    for (x, y), needle in cases:
        r = rig.cli.add_queries(x, y)
        assert not r.success and needle in r.message, (needle, r.message)
        assert len(r.ids) == 0
    r = rig.cli.add_queries([40.0, 60.0], [50.0, 70.0])
    assert r.success, r.message
    keep, gone = r.ids
    bad = rig.cli.remove_queries([gone, 987654, 42424242])
    assert not bad.success and "987654" in bad.message and "42424242" in bad.message
    ok = rig.cli.remove_queries([gone])
    assert ok.success, ok.message
    again = rig.cli.remove_queries([gone])
    assert not again.success and str(gone) in again.message
    m = rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(1), rig.stamp()))
    assert m is not None and tracks_arrays(m)[0].tolist() == [keep]
    assert abs(m.tracks[0].x - 41.0) < 1.0 and abs(m.tracks[0].y - 50.0) < 1.0
    assert rig.node.alive()


# ------------------------------------------------------------------------------------------ overlay
def test_overlay_is_drawn_only_while_subscribed(rig):
    tex = MovingTexture(160, 120, velocity=(1, 1), num_frames=12, seed=11)
    rig.start_sequence(tex)
    assert rig.cli.add_queries([50.0, 90.0], [40.0, 70.0]).success
    o0 = int(rig.settle()["overlays_published"])
    for t in range(1, 4):
        assert rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(t), rig.stamp())) is not None
    assert int(rig.settle()["overlays_published"]) == o0, "overlay drawn without a subscriber"
    rig.cli.subscribe_overlay()
    try:
        got = None
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        t = 4
        while got is None and time.monotonic() < deadline and t < tex.num_frames:
            stamp = rig.stamp()
            frame = tex.frame(t)
            assert rig.cli.send_and_wait(rig.cli.image_msg(frame, stamp)) is not None
            got = rig.cli.wait_for(lambda s=stamp: rig.cli.overlays.get(s), 1.5)
            t += 1
        assert got is not None, "no overlay image received while subscribed"
        _check_header(got, stamp)
        assert (got.encoding, got.width, got.height, got.step) == ("rgb8", 160, 120, 480)
        img = np.frombuffer(got.data, np.uint8).reshape(120, 160, 3)
        assert (img != frame).any(axis=2).sum() > 50  # markers drawn
    finally:
        rig.cli.unsubscribe_overlay()


# ------------------------------------------------------------------------------------------ diagnostics
def test_diagnostics_report_rates_latency_and_counts(rig):
    tex = MovingTexture(160, 120, velocity=(1, 0), num_frames=6, seed=13)
    rig.start_sequence(tex)
    assert rig.cli.add_queries([30.0, 60.0, 90.0], [30.0, 60.0, 90.0]).success
    for t in range(1, 6):
        assert rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(t), rig.stamp())) is not None
    d = rig.diag()
    for key in ("fps", "latency_p50_ms", "latency_p95_ms", "frames_received", "frames_processed",
                "frames_dropped", "live_tracks", "last_error", "method", "image_size"):
        assert key in d, key
    assert float(d["fps"]) > 0
    p50, p95 = float(d["latency_p50_ms"]), float(d["latency_p95_ms"])
    assert 0 < p50 <= p95 < 5000
    assert d["live_tracks"] == "3" and d["image_size"] == "160x120" and d["method"] == "probfuse"
    assert d["heavy_stage_stride"] == "1" and "step_ms_mean" not in d  # no time budget by default


def test_a_camera_stall_turns_diagnostics_warn_then_error(rig):
    """Defaults: WARN after stale_after_s = 1 s without an image, ERROR after 5 s."""
    tex = MovingTexture(160, 120, velocity=(1, 0), num_frames=2, seed=15)
    rig.start_sequence(tex)
    t_last = time.monotonic()
    seen = {}
    while time.monotonic() - t_last < 15.0 and 2 not in seen:
        d = rig.diag()
        seen.setdefault(int(d["_level"]), (time.monotonic() - t_last, d["_message"], d["seconds_since_last_image"]))
    assert 1 in seen and 2 in seen, seen
    (t_warn, warn_text, _), (t_error, error_text, since) = seen[1], seen[2]
    assert warn_text.startswith("no image for ") and "stalled" in warn_text, seen
    assert 1.0 <= t_warn + 0.5 and t_warn < t_error, seen  # WARN first (>= 1 s), then ERROR
    assert error_text.startswith("no image for ") and float(since) >= 5.0, seen
    # images again: the status recovers (one image just before each status, so none is stale)
    assert rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(1), rig.stamp())) is not None
    deadline = time.monotonic() + 15
    d = {}
    while time.monotonic() < deadline:
        rig.cli.publish(rig.cli.image_msg(tex.frame(1), rig.stamp()))
        d = rig.cli.latest_diagnostics(fresh=True, timeout_s=5.0) or {}
        if d.get("_level") == 0:
            break
    assert d.get("_level") == 0, d


def test_repeated_stamps_warn_and_a_jump_back_resets_with_one_warning(rig):
    """The same stamp again is tracked as the next frame (warned); an older stamp (a looping bag,
    a restarted driver) resets the tracker with one warning (issue 27: a looped bag used to be
    tracked across the jump)."""
    tex = MovingTexture(160, 120, velocity=(1, 0), num_frames=4, seed=17)
    s0, _ = rig.start_sequence(tex)
    assert rig.cli.add_queries([40.0, 80.0, 100.0], [40.0, 60.0, 80.0]).success
    s1 = rig.stamp()
    m = rig.cli.send_and_wait(rig.cli.image_msg(tex.frame(1), s1))
    assert m is not None and len(m.tracks) == 3
    d0 = rig.settle()
    rig.cli.publish(rig.cli.image_msg(tex.frame(2), s1))  # the same stamp again
    assert rig.cli.wait_for(lambda: rig.cli.tracks_order.count(s1) >= 2), "no tracks for the repeated stamp"
    assert len(rig.cli.tracks[s1].tracks) == 3  # tracked on
    rig.cli.publish(rig.cli.image_msg(tex.frame(3), s0))  # older than the previous image
    assert rig.cli.wait_for(lambda: rig.cli.tracks_order.count(s0) >= 2), "no tracks for the older stamp"
    assert len(rig.cli.tracks[s0].tracks) == 0  # reset: this image started afresh
    d1 = rig.settle()
    assert int(d1["stamps_out_of_order"]) - int(d0["stamps_out_of_order"]) == 2
    assert int(d1["stamp_jumps_back"]) - int(d0["stamp_jumps_back"]) == 1
    assert int(d1["frames_processed"]) - int(d0["frames_processed"]) == 2
    assert d1["live_tracks"] == "0"
    log = rig.node.log_text()
    assert f"image stamped {s1[0]}.{s1[1]:09d} has the same stamp as the previous image" in log, log[-3000:]
    jump = (f"image stamped {s0[0]}.{s0[1]:09d} is 1.000 s older than the previous image "
            f"({s1[0]}.{s1[1]:09d}): time jumped back (a looping bag or a restarted source); resetting the "
            f"tracker, 3 track(s) dropped")
    assert log.count(jump) == 1 and log.count("time jumped back") == 1, log[-3000:]


def test_node_shuts_down_cleanly_on_sigint(rig):
    """Last in this module: SIGINT ends the node with exit code 0 and no traceback."""
    rc = rig.node.stop(timeout_s=10.0)
    log = rig.node.log_text()
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


# ------------------------------------------------------------------------------------------ in-process
# The mailbox and the worker's error handling, made deterministic by driving a TrackerNode in this
# process (its image callback called directly; nothing listens to what it publishes).
@pytest.fixture
def local_node(ros_context):
    from gs_tracker_ros.ros.node import TrackerNode

    node = TrackerNode(context=ros_context)
    try:
        yield node
    finally:
        node.destroy_node()


def _wait(pred, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def _image(tex: MovingTexture, t: int):
    from gs_tracker_ros.ros.image_conversion import numpy_to_image

    msg = numpy_to_image(tex.frame(t), "rgb8")
    msg.header.stamp.sec = t
    return msg


def test_mailbox_keeps_only_the_newest_image_and_counts_the_rest(local_node):
    import threading

    node = local_node
    tex = MovingTexture(64, 48, velocity=(1, 0), num_frames=8)
    entered, release = threading.Event(), threading.Event()
    real_step = node._tracker.step
    seen = []

    def slow_step(frame):
        seen.append(frame[0, 0].copy())
        entered.set()
        assert release.wait(10)
        return real_step(frame)

    node._tracker.step = slow_step
    node._on_image(_image(tex, 0))
    assert entered.wait(10)  # the worker is busy with image 0
    for t in range(1, 6):
        node._on_image(_image(tex, t))  # each replaces the previous one in the one-slot mailbox
    release.set()
    assert _wait(lambda: node.stats.frames_processed == 2)
    s = node.stats.snapshot()
    assert (s["frames_received"], s["frames_processed"], s["frames_dropped"]) == (6, 2, 4)
    np.testing.assert_array_equal(seen[1], tex.frame(5)[0, 0])  # the newest image won
    assert node.latest_stamp.sec == 5


def test_a_looping_source_resets_the_tracker_once_per_jump_with_one_warning(local_node):
    """Three passes over the same 12 stamps (a bag played with --loop): every image is tracked,
    each jump back resets the tracker, one warning line at most per jump (throttled: a short loop
    gives one line per 5 s with the count of the others)."""
    node = local_node
    warnings = []

    class Recorder:  # the node's logger, recording what it warns (after throttling)
        def __init__(self, logger):
            self._real = logger

        def warning(self, text, **kw):
            warnings.append(text)
            return self._real.warning(text, **kw)

        def __getattr__(self, name):
            return getattr(self._real, name)

    node._logger = Recorder(node.get_logger())
    tex = MovingTexture(96, 64, velocity=(1, 0), num_frames=12)
    done = 0
    for loop in range(3):
        for t in range(12):
            msg = _image(tex, t)
            node._on_image(msg)
            done += 1
            assert _wait(lambda: node.stats.frames_processed == done)
            if t == 0 and not node._live_ids:
                with node._tracker_lock:
                    node._tracker.add_queries(np.array([[30.0, 30.0], [50.0, 40.0]]))
    s = node.stats.snapshot()
    assert (s["stamp_jumps_back"], s["stamps_out_of_order"], s["errors"]) == (2, 2, 0), s
    jumps = [w for w in warnings if "time jumped back" in w]
    assert len(jumps) == 1 and "resetting the tracker, 2 track(s) dropped" in jumps[0], warnings
    assert len(warnings) == 1, warnings  # nothing else was warned
    assert node._live_ids  # the points added after the last jump are tracked


def test_shutdown_from_active_finalizes_the_node(local_node):
    node = local_node
    assert node.lifecycle_state() == "active" and not node.finalized
    node.trigger_shutdown()
    assert node.finalized
    assert node.image_sub is None and node.tracks_pub is None and node._tracker is None
    assert node._worker is None or not node._worker.is_alive()


def test_worker_survives_exceptions_and_tracks_the_next_image(local_node):
    node = local_node
    tex = MovingTexture(64, 48, velocity=(1, 0), num_frames=30)
    real_step = node._tracker.step
    calls = {"n": 0}

    def failing_step(frame):
        calls["n"] += 1
        raise RuntimeError("simulated failure in the tracker")

    node._tracker.step = failing_step
    node._on_image(_image(tex, 0))
    assert _wait(lambda: node.stats.errors == 1)
    assert "simulated failure" in node.stats.last_error and node._worker.is_alive()
    node._tracker.step = real_step
    node._on_image(_image(tex, 1))
    assert _wait(lambda: node.stats.frames_processed == 1)
    # a run of failures resets the tracker (its state may be broken) and the node goes on
    from gs_tracker_ros.ros.node import MAX_CONSECUTIVE_FAILURES

    node._tracker.step = failing_step
    for t in range(2, 2 + MAX_CONSECUTIVE_FAILURES):
        node._on_image(_image(tex, t))
        assert _wait(lambda k=t: node.stats.errors == k)
    assert node.latest_stamp is None  # reset
    node._tracker.step = real_step
    node._on_image(_image(tex, 20))
    assert _wait(lambda: node.stats.frames_processed == 2)
    assert node._worker.is_alive()


def test_start_does_nothing_more_once_the_process_is_stopping(ros_context):
    """A signal while the node starts (run_node sets the stop event): no configure when it came
    before, no activate when it came while the tracker was built; the node can still be destroyed."""
    import threading

    from gs_tracker_ros.ros.node import TrackerNode

    stop = threading.Event()
    node = TrackerNode(context=ros_context, autostart=False)
    try:
        stop.set()
        node.start(stop=stop)
        assert node.lifecycle_state() == "unconfigured"
        stop.clear()
        build = node._build_tracker

        def build_then_signal():  # the signal arrives while the model / engine loads
            tracker = build()
            stop.set()
            return tracker

        node._build_tracker = build_then_signal
        node.start(stop=stop)
        assert node.lifecycle_state() == "inactive" and node.image_sub is None and node._worker is None
    finally:
        node.destroy_node()


def test_tracks_message_carries_every_field_of_the_state_in_order():
    from std_msgs.msg import Header

    from gs_tracker_ros.core.types import TrackState
    from gs_tracker_ros.ros.messages import ns_text, stamp_ns, stamp_text, tracks_msg

    state = TrackState(7, np.array([4, 9, 2], np.int64), np.array([[1.5, 2.0], [30.25, 4.0], [5.0, 60.5]], np.float32),
                       np.array([0.5, 2.0, 9.0], np.float32), np.array([True, False, True]),
                       np.array([1, 2, 3], np.uint8), np.array([0.01, 0.5, 0.25], np.float32))
    header = Header()
    header.stamp.sec, header.stamp.nanosec, header.frame_id = 12, 5_000, "cam"
    msg = tracks_msg(state, header)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (12, 5_000, "cam")
    assert [(t.id, t.visible, t.status) for t in msg.tracks] == [(4, True, 1), (9, False, 2), (2, True, 3)]
    floats = np.array([(t.x, t.y, t.variance, t.p_lost) for t in msg.tracks])
    np.testing.assert_allclose(floats, np.column_stack([state.xy, state.variance, state.p_lost]), rtol=1e-6)
    assert len(tracks_msg(TrackState.empty(0), header).tracks) == 0
    assert stamp_ns(header.stamp) == 12_000_005_000
    assert stamp_text(header.stamp) == ns_text(12_000_005_000) == "12.000005000"
