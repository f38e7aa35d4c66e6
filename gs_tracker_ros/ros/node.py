"""``gs_tracker_node``: the ROS 2 adapter around the online point tracker.

Topics (relative names, remappable):
  sub ``image`` (sensor_msgs/Image; with ``image_transport: compressed`` sensor_msgs/CompressedImage
  on ``<image>/compressed``), ``camera_info`` (sensor_msgs/CameraInfo, optional; the sibling of
  the image topic unless remapped);
  pub ``tracks`` (gs_tracker_ros/PointTrackArray), ``tracks_image`` (sensor_msgs/Image rgb8 overlay,
  drawn only while subscribed), ``/diagnostics`` (diagnostic_msgs/DiagnosticArray).
Services: ``~/add_queries`` (AddQueries), ``~/remove_queries`` (RemoveQueries), ``~/reset``
(std_srvs/Trigger). Parameters: :mod:`gs_tracker_ros.ros.parameters` (docs/ros.md).

Threading: the image callback only puts the newest image into a one-slot mailbox (an image that
is replaced before the worker took it counts as dropped) and returns; one worker thread converts,
runs ``tracker.step`` and publishes. The tracker is guarded by a lock shared with the services and
parameter changes. Exceptions while tracking are logged (throttled), counted and never stop the
node.

Lifecycle (a managed node): ``configure`` builds the tracker and offers the services,
``activate`` subscribes / publishes / starts the worker, ``deactivate`` and ``cleanup`` undo
that; ``autostart`` (default true) runs configure + activate at start-up.

Run: ``gs_tracker_node --ros-args --params-file config/tracker.yaml -r image:=/camera/image_raw``
(or ``python -m gs_tracker_ros.ros.run_node ...``, see :mod:`.run_node`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from gs_tracker_ros.msg import PointTrack, PointTrackArray
from gs_tracker_ros.srv import AddQueries, RemoveQueries

from ..core.clip_buffer import validate_frame
from ..core.errors import ConfigError, TrackerError
from ..core.seeding import GridSeeder
from ..core.geometry import validate_query_points
from ..core.types import PointTracker, TrackState
from ..methods import make_tracker, method_config
from ..viz.overlay import TrackHistory, draw_tracks
from . import parameters as P
from .diagnostics import NodeStats, diagnostic_array
from .image_conversion import (
    ImageConversionError,
    UnsupportedEncodingError,
    compressed_to_rgb,
    image_to_rgb,
    rgb_to_image,
)
from . import startup_checks
from .image_subscription import ImageSubscription
from .qos import AUTO, AUTO_OVERRIDE_POLICIES, QOS_OVERRIDE_POLICIES, overriding_options, qos_profile

NODE_NAME = "gs_tracker_node"
# Topic and service names (relative to the node's namespace / private namespace); the tests and
# the launch-file check read these.
SUBSCRIBED_TOPICS = ("image", "camera_info")
PUBLISHED_TOPICS = ("tracks", "tracks_image", "/diagnostics")
SERVICES = ("~/add_queries", "~/remove_queries", "~/reset")

LOG_THROTTLE_S = 5.0
MAX_CONSECUTIVE_FAILURES = 10  # then the tracker is reset (its state may be inconsistent)


class _Throttle:
    """Per-key log throttling that also reports how many messages it held back."""

    def __init__(self, period_s: float = LOG_THROTTLE_S) -> None:
        self.period_s = period_s
        self._last: dict[Any, float] = {}
        self._held: dict[Any, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: Any) -> str | None:
        """None if a message for ``key`` should be held back, else a suffix to append ('' or a count)."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            held = self._held.pop(key, 0)
            if len(self._last) > 256:  # bounded: forget the oldest keys
                for k in sorted(self._last, key=self._last.get)[:128]:
                    self._last.pop(k, None)
            return f" ({held} similar message(s) suppressed in the last {self.period_s:.0f} s)" if held else ""


class TrackerNode(LifecycleNode):
    """The tracker node (see the module docstring), a managed (lifecycle) node.

    ``configure`` builds the tracker (loading a model / ONNX / TensorRT engine where the method
    needs one) and offers the services; ``activate`` subscribes, publishes and starts the worker;
    ``deactivate`` unsubscribes and stops it; ``cleanup`` releases the tracker and the services.
    With ``autostart`` (parameter, default true; or the ``autostart`` argument) the constructor
    configures and activates, so the node tracks right away; a failed configure raises the
    :class:`TrackerError` it met.
    """

    def __init__(self, node_name: str = NODE_NAME, autostart: bool | None = None,
                 argv: list[str] | None = None, **kwargs: Any) -> None:
        """``argv``: the process's command line (default ``sys.argv``), read for where each
        parameter override came from (:func:`.startup_checks.wildcard_only_parameters`)."""
        super().__init__(node_name, **kwargs)
        self._throttle = _Throttle()
        self.stats = NodeStats()
        self._worker: threading.Thread | None = None
        # mailbox: newest image wins
        self._mail_cv = threading.Condition()
        self._mail: tuple[Image, float] | None = None
        self._stop = threading.Event()
        try:
            self._params = P.declare_all(self)
            P.check_node_values(self._params)
            self._config = P.tracker_config_from_params(self._params)
            self._method = self._params["method"]
            # the image topic after remapping; compressed images come on its /compressed sub-topic
            self._image_topic = self.resolve_topic_name("image")
            self._refuse_unknown_parameters(sys.argv if argv is None else argv)
        except BaseException:
            super().destroy_node()
            raise
        self._tracker_lock = threading.RLock()
        self._tracker: PointTracker | None = None  # built by configure, released by cleanup
        self._configure_error = ""
        self._seeder = GridSeeder(self._params["seed_grid_size"], self._params["reseed_when_below"])
        self._live_ids: set[int] = set()
        self._frame_hw: tuple[int, int] | None = None  # size of the frames the tracker holds
        self._latest_header: Header | None = None  # header of the latest frame given to the tracker
        self._consecutive_failures = 0
        self._history = None  # viz.overlay.TrackHistory, created while the overlay is subscribed
        self._camera_info: CameraInfo | None = None
        # (sequence number, stamp ns, RGB frame) of the last query_history processed images, for
        # ~/add_queries on an earlier image; _resets counts tracker resets (a handover spanning
        # one is refused)
        self._recent: deque[tuple[int, int, np.ndarray]] = deque(maxlen=max(1, int(self._params["query_history"])))
        self._processed_seq = 0
        self._resets = 0
        # created by configure (services) and activate (topics); None otherwise
        self.add_srv = self.remove_srv = self.reset_srv = None
        self.tracks_pub = self.overlay_pub = self.image_sub = self.info_sub = None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # in every state
        self.diag_timer = self.create_timer(self._params["diagnostics_period_s"], self._publish_diagnostics)
        # two nodes of one name would both track every image and answer every call: say so
        self._name_clash = startup_checks.NameClashCheck(self, self.get_logger().warning)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        if self._params["autostart"] if autostart is None else autostart:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                error = self._configure_error or "configure failed"
                super().destroy_node()
                raise TrackerError(error)
            self.trigger_activate()

    # ------------------------------------------------------------------------------------ lifecycle
    def lifecycle_state(self) -> str:
        """``unconfigured`` / ``inactive`` / ``active`` / ``finalized`` (or a transition)."""
        return str(self._state_machine.current_state[1])

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            tracker = self._build_tracker()
        except (TrackerError, ValueError) as err:
            self._configure_error = str(err)
            self.get_logger().error(f"configure failed: {err}")
            return TransitionCallbackReturn.FAILURE
        with self._tracker_lock:
            self._tracker = tracker
            self._reset_tracker_locked()
        self.add_srv = self.create_service(AddQueries, "~/add_queries", self._on_add_queries)
        self.remove_srv = self.create_service(RemoveQueries, "~/remove_queries", self._on_remove_queries)
        self.reset_srv = self.create_service(Trigger, "~/reset", self._on_reset)
        self.get_logger().info(f"configured: method '{self._method}'; services {self.add_srv.service_name}, "
                               f"{self.remove_srv.service_name}, {self.reset_srv.service_name}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        # QoS: the image_qos profile, then ROS's own per-topic overrides (ros/qos.py)
        self.tracks_pub = self.create_publisher(PointTrackArray, "tracks", qos_profile("reliable", depth=10),
                                                qos_overriding_options=overriding_options())
        self.overlay_pub = self.create_publisher(Image, "tracks_image", qos_profile("reliable", depth=1))
        image_qos = self._params["image_qos"]
        if self._params["image_transport"] == "compressed":
            topic = self._image_topic + "/compressed"
            self.image_sub = ImageSubscription(self, CompressedImage, topic, topic, self._on_image, image_qos,
                                               self.stats, self._warn)
        else:
            self.image_sub = ImageSubscription(self, Image, "image", self._image_topic, self._on_image, image_qos,
                                               self.stats, self._warn)
        # camera_info: the profile without the image's overrides; under auto best effort (small
        # messages, and it matches every publisher)
        qos = qos_profile("sensor_data" if image_qos == AUTO else image_qos)
        self.info_sub = self.create_subscription(CameraInfo, self._camera_info_topic(), self._on_camera_info, qos)
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="gs_tracker_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"tracking with method '{self._method}' on '{self.image_sub.topic_name}' "
            f"(camera_info '{self.info_sub.topic_name}') "
            f"(QoS {self.image_sub.describe()}); publishing '{self.tracks_pub.topic_name}'"
            + (f"; grid seeding {self._seeder.grid_size}x{self._seeder.grid_size}" if self._seeder.enabled else "")
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self.get_logger().info("deactivated: not subscribed, not publishing (the tracker keeps its state)")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        self.get_logger().info("cleaned up: tracker and services released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._cleanup()
        self.get_logger().info(f"shut down (lifecycle shutdown from '{state.label}'): not tracking, tracker and "
                               f"services released; finalized, the process exits")
        return TransitionCallbackReturn.SUCCESS

    @property
    def finalized(self) -> bool:
        """True once the lifecycle ``shutdown`` transition completed (nothing can bring the node
        back: :func:`main` then ends the process with exit code 0)."""
        return self.lifecycle_state() == "finalized"

    def _deactivate(self) -> None:
        """Unsubscribe, stop the worker (an image still in the mailbox counts as dropped), stop
        publishing. Idempotent."""
        if self.image_sub is not None:
            self.image_sub.destroy()
        if self.info_sub is not None:
            self.destroy_subscription(self.info_sub)
        self.image_sub = self.info_sub = None
        self.stop_worker()
        with self._mail_cv:
            if self._mail is not None:
                self._mail = None
                self.stats.dropped()
        for pub in (self.tracks_pub, self.overlay_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self.tracks_pub = self.overlay_pub = None

    def _cleanup(self) -> None:
        """Release the services and the tracker (a model / engine with it). Idempotent."""
        for srv in (self.add_srv, self.remove_srv, self.reset_srv):
            if srv is not None:
                self.destroy_service(srv)
        self.add_srv = self.remove_srv = self.reset_srv = None
        with self._tracker_lock:
            if self._tracker is not None:
                self._reset_tracker_locked()
            self._tracker = None

    # ------------------------------------------------------------------------------------ building
    def _camera_info_topic(self) -> str:
        """The CameraInfo topic: an explicit remapping of ``camera_info`` (``-r camera_info:=...``);
        else the sibling of the (remapped) image topic, as image_transport's CameraSubscriber pairs
        them: ``-r image:=/camera/image_raw`` -> ``/camera/camera_info``."""
        remapped = self.resolve_topic_name("camera_info")
        if remapped != self.resolve_topic_name("camera_info", only_expand=True):
            return remapped
        return camera_info_sibling(self._image_topic)

    def _qos_override_names(self) -> dict[str, str | None]:
        """The ``qos_overrides.*`` parameters the image subscription and the tracks publisher
        declare on activation (rclpy's QoSOverridingOptions), each with None or the reason it is
        not offered, known before they exist so that a typo is refused at start-up."""
        image = self._image_topic + ("/compressed" if self._params["image_transport"] == "compressed" else "")
        auto = self._params["image_qos"] == AUTO
        names: dict[str, str | None] = {}
        for topic, kind in ((image, "subscription"), (self.resolve_topic_name("tracks"), "publisher")):
            for policy in QOS_OVERRIDE_POLICIES:
                offered = not (auto and kind == "subscription" and policy not in AUTO_OVERRIDE_POLICIES)
                names[f"qos_overrides.{topic}.{kind}.{policy}"] = None if offered else (
                    "image_qos auto chooses the reliability from the publishers: set image_qos to reliable or "
                    "sensor_data to fix it")
        return names

    def _refuse_unknown_parameters(self, argv: list[str]) -> None:
        """Raise :class:`ConfigError` (one line) for start-up overrides that name no parameter of
        this node; warn about those from params-file sections for all nodes (startup_checks)."""
        overrides = list(getattr(self, "_parameter_overrides", {}))
        qos_names = self._qos_override_names()
        known = [*P.known_parameter_names(), *(n for n, why in qos_names.items() if why is None)]
        hints = {n: why for n, why in qos_names.items() if why is not None}
        error, warnings = startup_checks.unknown_parameter_report(
            overrides, known, startup_checks.wildcard_only_parameters(argv, self.get_fully_qualified_name()), hints)
        for text in warnings:
            self.get_logger().warning(text)
        if error is not None:
            raise ConfigError(error)

    def _build_tracker(self) -> PointTracker:
        """The one tracker of this node, from :func:`make_tracker` (engine settings included:
        ``tracker.engine.*``). ``self._config`` becomes the config it runs with (a profile's keys
        where the parameters leave the default): a run-time parameter change updates it in place."""
        self._config = method_config(self._method, self._config)
        return make_tracker(self._method, self._config)

    # ------------------------------------------------------------------------------------ logging
    def _warn(self, key: Any, text: str) -> None:
        suffix = self._throttle(key)
        if suffix is not None:
            self.get_logger().warning(text + suffix)

    def _error(self, key: Any, text: str) -> None:
        suffix = self._throttle(key)
        if suffix is not None:
            self.get_logger().error(text + suffix)

    # ------------------------------------------------------------------------------------ callbacks
    def _on_image(self, msg: Image) -> None:
        """Executor thread: keep only the newest image for the worker; never blocks."""
        now = time.monotonic()
        self.stats.received()
        with self._mail_cv:
            replaced = self._mail is not None
            self._mail = (msg, now)
            self._mail_cv.notify()
        if replaced:
            self.stats.dropped()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg
        hw = self._frame_hw
        if hw is not None and (msg.height, msg.width) != hw:
            text = (f"camera_info is {msg.width}x{msg.height} but the images are {hw[1]}x{hw[0]} "
                    f"(check the remappings of 'image' and 'camera_info')")
            self.stats.camera_info_mismatch(text)
            self._warn("camera_info_mismatch", text)

    # ------------------------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._mail_cv:
                if self._mail is None:
                    self._mail_cv.wait(timeout=0.5)
                item, self._mail = self._mail, None
            if item is None:
                continue
            try:
                self._process(*item)
            except Exception as err:  # the worker must survive anything
                if self._stop.is_set() or not self.context.ok():
                    return
                text = f"tracking failed: {type(err).__name__}: {err}"
                self.stats.error(text)
                self._error(("worker", type(err).__name__), text)
                self._consecutive_failures += 1
                if self._consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    self.get_logger().error(
                        f"{self._consecutive_failures} consecutive failures: resetting the tracker")
                    self._reset_tracker()
                    self._consecutive_failures = 0

    def _process(self, msg: Image | CompressedImage, t_receipt: float) -> None:
        try:
            if isinstance(msg, CompressedImage):
                frame = compressed_to_rgb(msg)
            else:
                frame = image_to_rgb(msg, int(self._params["mono16_shift"]))
        except UnsupportedEncodingError as err:
            text = f"dropping image: {err}"
            self.stats.rejected(text)
            self._warn(("encoding", err.encoding), text)
            return
        except ImageConversionError as err:
            text = f"dropping image: {err}"
            self.stats.rejected(text)
            self._warn(("layout", getattr(msg, "encoding", None) or getattr(msg, "format", "")), text)
            return

        try:
            frame = validate_frame(frame)  # what the core accepts (e.g. >= 16x16), before any reset
        except TrackerError as err:
            text = f"dropping image: {err}"
            self.stats.rejected(text)
            self._warn(("core", type(err).__name__), text)
            return
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        with self._tracker_lock:
            if self._latest_header is not None and self._jumped_back(msg.header, self._latest_header):
                self._reset_tracker_locked()  # this image starts afresh, like the first one
            if self._frame_hw is not None and hw != self._frame_hw:
                self.get_logger().warning(
                    f"image size changed from {self._frame_hw[1]}x{self._frame_hw[0]} to {hw[1]}x{hw[0]}: "
                    f"resetting the tracker ({len(self._live_ids)} track(s) dropped)")
                self._reset_tracker_locked()
            state = self._tracker.step(frame)
            self._frame_hw = hw
            self._latest_header = msg.header
            self._processed_seq += 1
            if self._params["query_history"] > 0:
                self._recent.append((self._processed_seq, _stamp_ns(msg.header.stamp), frame))
            self._live_ids = set(state.ids.tolist())
            if self._seeder.enabled:
                self._seed(state, hw)
        self._consecutive_failures = 0

        tracks_pub = self.tracks_pub  # None once deactivated
        if tracks_pub is not None:
            tracks_pub.publish(self._tracks_msg(state, msg.header))
        latency = time.monotonic() - t_receipt
        self._publish_overlay(frame, state, msg.header)
        # counted last: every received image ends up exactly once as processed, dropped, rejected
        # or error (an exception above counts as an error only)
        self.stats.processed(latency, len(state), int(state.visible.sum()))

    def _jumped_back(self, header: Header, previous: Header) -> bool:
        """Whether an image is stamped before the previous one: time jumped back (a looping bag,
        a restarted driver), the tracker must start afresh; one warning per jump (throttled).
        An image with the previous image's stamp is tracked as the next frame, with a warning.
        Tracker lock held."""
        now_ns, prev_ns = _stamp_ns(header.stamp), _stamp_ns(previous.stamp)
        if now_ns > prev_ns:
            return False
        self.stats.stamp_out_of_order()
        if now_ns == prev_ns:
            self._warn("stamp_repeated",
                       f"image stamped {_stamp_text(header.stamp)} has the same stamp as the previous image: "
                       f"tracking it as the next frame anyway (the tracker follows arrival order)")
            return False
        self.stats.jumped_back()
        self._warn("stamp_jump_back",
                   f"image stamped {_stamp_text(header.stamp)} is {(prev_ns - now_ns) / 1e9:.3f} s older than the "
                   f"previous image ({_stamp_text(previous.stamp)}): time jumped back (a looping bag or a "
                   f"restarted source); resetting the tracker, {len(self._live_ids)} track(s) dropped (add points "
                   f"again with ~/add_queries; grid seeding re-seeds)")
        return True

    def _seed(self, state: TrackState, hw: tuple[int, int]) -> None:
        """Grid seeding on the frame just stepped (tracker lock held)."""
        result = self._seeder.reseed(self._tracker, state, hw[1], hw[0], int(self._params["max_tracks"]))
        if not result.changed:
            return
        self._live_ids.difference_update(result.removed_ids.tolist())
        self._live_ids.update(result.added_ids.tolist())
        self.stats.tracks_changed(len(self._live_ids))

    @staticmethod
    def _tracks_msg(state: TrackState, header: Header) -> PointTrackArray:
        out = PointTrackArray()
        out.header.stamp = header.stamp
        out.header.frame_id = header.frame_id
        ids = state.ids.tolist()
        xs = state.xy[:, 0].tolist()
        ys = state.xy[:, 1].tolist()
        vs = state.variance.tolist()
        lost = state.p_lost.tolist()
        vis = state.visible.tolist()
        status = state.status.tolist()
        tracks = []
        for i in range(len(ids)):
            t = PointTrack()
            t.id, t.x, t.y, t.variance, t.visible, t.status = ids[i], xs[i], ys[i], vs[i], vis[i], status[i]
            t.p_lost = lost[i]
            tracks.append(t)
        out.tracks = tracks
        return out

    def _publish_overlay(self, frame: np.ndarray, state: TrackState, header: Header) -> None:
        overlay_pub = self.overlay_pub
        if not self._params["publish_overlay"] or overlay_pub is None or overlay_pub.get_subscription_count() == 0:
            self._history = None
            return
        if self._history is None:
            self._history = TrackHistory(max_len=15)
        self._history.update(state)
        snap_fps = self.stats.snapshot()["fps"]
        img = draw_tracks(frame, self._history, fps=snap_fps if snap_fps > 0 else None,
                          extra_header=self._method)
        overlay_pub.publish(rgb_to_image(img, header))
        self.stats.overlay()

    # ------------------------------------------------------------------------------------ tracker ops
    def _reset_tracker(self) -> None:
        with self._tracker_lock:
            self._reset_tracker_locked()

    def _reset_tracker_locked(self) -> int:
        n = len(self._live_ids)
        if self._tracker is not None:
            self._tracker.reset()
        self._seeder.reset()
        self._live_ids.clear()
        self._frame_hw = None
        self._latest_header = None
        self._history = None
        self._recent.clear()
        self._resets += 1
        self.stats.tracks_changed(0)
        return n

    # ------------------------------------------------------------------------------------ services
    def _on_add_queries(self, request: AddQueries.Request, response: AddQueries.Response) -> AddQueries.Response:
        response.ids = []
        x = np.asarray(request.x, np.float64)
        y = np.asarray(request.y, np.float64)
        if x.shape != y.shape:
            return _fail(response, f"x and y must have the same length, got {x.size} and {y.size}")
        if x.size == 0:
            response.success = True
            response.message = "no points given"
            return response
        xy = np.stack([x, y], axis=1)
        stamp_ns = _stamp_ns(request.stamp)
        if stamp_ns:
            return self._add_on_earlier_image(xy, stamp_ns, response)
        with self._tracker_lock:
            return self._add_locked(xy, response)

    def _add_locked(self, xy: np.ndarray, response: AddQueries.Response, note: str = "") -> AddQueries.Response:
        """Add ``xy`` on the most recent processed image (tracker lock held)."""
        if self._latest_header is None or self._frame_hw is None:
            return _fail(response, f"no image received yet: queries are placed on the most recent image; "
                                   f"publish images on '{self._image_topic}' first")
        try:
            validate_query_points(xy, self._frame_hw)
        except TrackerError as err:
            return _fail(response, str(err))
        max_tracks = int(self._params["max_tracks"])
        if len(self._live_ids) + xy.shape[0] > max_tracks:
            return _fail(response, f"adding {xy.shape[0]} point(s) would exceed max_tracks={max_tracks} "
                                   f"({len(self._live_ids)} live)")
        try:
            ids = np.asarray(self._tracker.add_queries(xy), np.int64)
        except (TrackerError, KeyError, ValueError) as err:
            return _fail(response, _err_text(err))
        self._live_ids.update(ids.tolist())
        stamp = self._latest_header.stamp
        self.stats.tracks_changed(len(self._live_ids))
        response.success = True
        response.ids = ids.tolist()
        response.message = f"added {ids.size} point(s) on the image stamped {_stamp_text(stamp)}" + note
        return response

    def _add_on_earlier_image(self, xy: np.ndarray, stamp_ns: int,
                              response: AddQueries.Response) -> AddQueries.Response:
        """Points picked on an earlier, still buffered image: a separate tracker of the same method
        and config follows them from that image through the buffered ones to the most recent
        image, where they are handed over to the node's tracker (as queries of that image)."""
        with self._tracker_lock:
            frames = list(self._recent)
            resets = self._resets
        at = next((k for k, (_, s, _) in enumerate(frames) if s == stamp_ns), None)
        if at is None:
            held = (f"it holds {len(frames)} image(s), stamped {_ns_text(frames[0][1])} to {_ns_text(frames[-1][1])}"
                    if frames else "it holds none yet")
            return _fail(response, f"no processed image stamped {_ns_text(stamp_ns)} in the node's history "
                                   f"(query_history={self._params['query_history']}: {held}); "
                                   f"send stamp 0 for the most recent image")
        seq, _, first = frames[at]
        try:
            validate_query_points(xy, first.shape[:2])
        except TrackerError as err:
            return _fail(response, str(err))
        if at == len(frames) - 1:  # it is the most recent image after all
            with self._tracker_lock:
                if self._recent and self._recent[-1][0] == seq:
                    return self._add_locked(xy, response)
        helper = make_tracker(self._method, self._config)
        helper.step(first)
        helper_ids = np.asarray(helper.add_queries(xy), np.int64)
        todo, last_seq, state, steps = frames[at + 1:], seq, None, 0
        while True:
            for s, _, frame in todo:
                state = helper.step(frame)
                last_seq, steps = s, steps + 1
            self._tracker_lock.acquire()
            try:
                if self._resets != resets:
                    return _fail(response, "the tracker was reset while the points were tracked to the most "
                                           "recent image; nothing was added")
                todo = [item for item in self._recent if item[0] > last_seq]
                if todo:
                    continue  # newer images arrived meanwhile: follow them too (lock released below)
                if state is None:  # the picked image is the most recent one
                    return self._add_locked(xy, response)
                row = {int(i): k for k, i in enumerate(state.ids)}
                order = [row[int(i)] for i in helper_ids]
                moved = state.xy[order].astype(np.float64)
                hidden = int((~state.visible[order]).sum())
                note = (f" (picked on the image stamped {_ns_text(stamp_ns)} and tracked over {steps} image(s)"
                        + (f"; {hidden} of them judged occluded on the way, placed where predicted" if hidden else "")
                        + ")")
                return self._add_locked(moved, response, note)
            finally:
                self._tracker_lock.release()

    def _on_remove_queries(self, request: RemoveQueries.Request,
                           response: RemoveQueries.Response) -> RemoveQueries.Response:
        ids = [int(i) for i in request.ids]
        with self._tracker_lock:
            unknown = sorted(set(ids) - self._live_ids)
            if unknown:
                shown = ", ".join(str(i) for i in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
                return _fail(response, f"unknown track id(s): {shown}; nothing was removed")
            if ids:
                try:
                    self._tracker.remove_queries(np.asarray(ids, np.int64))
                except (KeyError, TrackerError, ValueError) as err:
                    return _fail(response, _err_text(err))
                self._live_ids.difference_update(ids)
                self._seeder.forget(ids)
            self.stats.tracks_changed(len(self._live_ids))
        response.success = True
        response.message = f"removed {len(set(ids))} track(s)"
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._tracker_lock:
            n = self._reset_tracker_locked()
        response.success = True
        response.message = f"tracker reset: {n} track(s) removed and all frames forgotten"
        self.get_logger().info(response.message)
        return response

    # ------------------------------------------------------------------------------------ parameters
    def _validate_parameters(self, params: list) -> SetParametersResult:
        # only the node's own parameters: rclpy's (use_sim_time, the read-only qos_overrides.*
        # declared on activation) are rclpy's business
        changes = {p.name: P._plain(p.value) for p in params if p.name in P.SPECS}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            config = P.check_update(self._params, changes)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        if "max_tracks" in changes:
            with self._tracker_lock:
                live = len(self._live_ids)
            if changes["max_tracks"] < live:  # refused, never silently ignored nor tracks dropped
                return SetParametersResult(successful=False, reason=(
                    f"max_tracks={changes['max_tracks']} is below the {live} live track(s): remove "
                    f"tracks first (~/remove_queries, or ~/reset) and set it again"))
        self._validated_update = (changes, config)  # _apply_parameters takes it: built once
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list) -> None:
        changes = {p.name: P._plain(p.value) for p in params if p.name in P.SPECS}
        if not changes:
            return
        validated, self._validated_update = getattr(self, "_validated_update", None), None
        with self._tracker_lock:
            new_config = (validated[1] if validated and validated[0] == changes
                          else P.check_update(self._params, changes))
            self._params.update(changes)
            keys = [P.SPECS[n].config_key for n in changes if P.SPECS[n].config_key]
            # the running tracker reads self._config (a profile's keys included, _build_tracker): an
            # explicit change of one of the profile's keys wins over the profile
            P.apply_runtime_config(self._config, new_config, keys)
            self._seeder.grid_size = int(self._params["seed_grid_size"])
            self._seeder.reseed_when_below = float(self._params["reseed_when_below"])
        self.get_logger().info("parameters changed: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))

    # ------------------------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        snap = self.stats.snapshot(end_period=True)
        state = self.lifecycle_state()
        extra = {"method": self._method, "lifecycle_state": state}
        image_sub = self.image_sub
        extra["image_qos"] = image_sub.describe() if image_sub is not None else self._params["image_qos"]
        hw = self._frame_hw
        extra["image_size"] = f"{hw[1]}x{hw[0]}" if hw else "none"
        info = self._camera_info
        extra["camera_info"] = f"{info.width}x{info.height}" if info is not None else "none"
        schedule = getattr(self._tracker, "schedule", None)  # the long chains' / observer's period
        if schedule is not None:
            extra["heavy_stage_stride"] = str(schedule.stride)
            if schedule.config.frame_budget_ms > 0:
                extra["step_ms_mean"] = f"{schedule.mean_ms:.1f} (budget {schedule.config.frame_budget_ms:g})"
        header = self._latest_header
        name = f"{self.get_fully_qualified_name()}: tracker"
        self.diag_pub.publish(diagnostic_array(snap, self.get_clock().now().to_msg(), name,
                                               hardware_id=header.frame_id if header is not None else "",
                                               extra=extra, stale_after_s=self._params["stale_after_s"],
                                               stale_error_after_s=self._params["stale_error_after_s"],
                                               not_tracking=None if state == "active" else
                                               _NOT_TRACKING.get(state, f"{state}: not tracking")))

    def publish_diagnostics_now(self) -> None:
        """One status now (outside the timer): the last word of a node that is about to exit."""
        self._publish_diagnostics()

    # ------------------------------------------------------------------------------------ life cycle
    def stop_worker(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with self._mail_cv:
            self._mail_cv.notify_all()
        if self._worker is not None and self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout_s)

    def destroy_node(self) -> None:
        self.stop_worker()
        super().destroy_node()


# /diagnostics message of each lifecycle state but active (level OK: not tracking on purpose)
_NOT_TRACKING = {
    "unconfigured": "unconfigured: not tracking (lifecycle: configure, then activate, to track)",
    "inactive": "inactive: not tracking (lifecycle: activate to track)",
    "finalized": "finalized: not tracking (lifecycle shutdown; the process exits)",
}
FINAL_GRACE_S = 0.5  # after shutdown: time for the change_state reply and the last status to leave


def camera_info_sibling(image_topic: str) -> str:
    """``camera_info`` next to a (fully qualified) image topic: ``/camera/image_raw`` ->
    ``/camera/camera_info``, ``/image`` -> ``/camera_info`` (image_transport's rule)."""
    parent = image_topic.rsplit("/", 1)[0]
    return f"{parent}/camera_info"


def _fail(response, message: str):
    response.success = False
    response.message = message
    return response


def _err_text(err: Exception) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _stamp_text(stamp) -> str:
    return f"{stamp.sec}.{stamp.nanosec:09d}"


def _ns_text(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _rcl_error_line(err: Exception) -> str:
    """The first line of an RCLError without rcl's ``, at /project/src/...`` source locations."""
    line = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
    return line.split(", at /")[0]


RCL_INIT_FAILURE_LINE = "Failed to parse global arguments"


class _rcl_init_output:
    """Hold back what rcl writes to stderr (file descriptor 2) during ``rclpy.init`` and pass it
    on afterwards, less the lines :meth:`drop` names: a rejected params file must give one line,
    ours, which repeats rcl's reason and names the file."""

    def __init__(self) -> None:
        self._drop: list[str] = []

    def drop(self, needle: str) -> None:
        self._drop.append(needle)
        self._flush()

    def __enter__(self) -> "_rcl_init_output":
        import tempfile

        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        if exc[0] is None or exc[0].__name__ != "RCLError":  # else the caller drops rcl's line first
            self._flush()

    def _flush(self) -> None:
        if self._tmp.closed:
            return
        self._tmp.seek(0)
        lines = self._tmp.read().decode(errors="replace").splitlines(keepends=True)
        self._tmp.close()
        kept = "".join(ln for ln in lines if not any(d in ln for d in self._drop))
        if kept:
            sys.stderr.write(kept)
            sys.stderr.flush()


def _ignore_further_signals() -> None:
    """While shutting down (bounded: the worker join has a timeout), a second SIGINT / SIGTERM
    (Ctrl-C twice, or launch forwarding one more) must not interrupt ``destroy_node``."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):  # not the main thread (the node run from a test)
            pass


def main(args: list[str] | None = None) -> int:
    """Run ``gs_tracker_node`` (standard ``--ros-args`` accepted); the exit code.

    0 after SIGINT / SIGTERM, also when one arrives while the node is starting; 2 with one line
    for a bad command line (a missing, binary or malformed ``--params-file``) or an invalid
    parameter; 1 with one line for any other failure before the node spins (nothing fails
    silently: a launcher always sees it). :func:`gs_tracker_ros.ros.run_node.main` (the
    ``gs_tracker_node`` executable) turns SIGTERM into the same clean stop as SIGINT before
    importing anything heavy.
    """
    from rclpy._rclpy_pybind11 import RCLError

    from .run_node import stop_requested  # a signal whose KeyboardInterrupt was swallowed

    argv = sys.argv if args is None else args
    node = None
    initialised = spinning = False
    try:
        try:
            P.check_params_files(argv)
            with _rcl_init_output() as rcl_output:
                rclpy.init(args=args)
            initialised = True
        except (ConfigError, RCLError) as err:
            if isinstance(err, RCLError):  # rcl logged "Failed to parse global arguments" already
                rcl_output.drop(RCL_INIT_FAILURE_LINE)
            text = str(err) if isinstance(err, ConfigError) else _rcl_error_line(err)
            fatal_line(f"cannot start: {text}")
            return 2
        if stop_requested():
            return 0
        try:
            node = TrackerNode(argv=argv)
        except (TrackerError, ValueError) as err:
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {first_line(err)}")
            return 2
        if stop_requested():
            return 0
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spinning = True
        try:
            while rclpy.ok() and not node.finalized:
                executor.spin_once(timeout_sec=0.2)
            if node.finalized:  # `ros2 lifecycle set ... shutdown`: say so, then end the process
                node.publish_diagnostics_now()
                end = time.monotonic() + FINAL_GRACE_S
                while rclpy.ok() and time.monotonic() < end:
                    executor.spin_once(timeout_sec=0.05)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        return 0
    except KeyboardInterrupt:  # a signal while starting (before spin)
        return 0
    except Exception as err:
        if stop_requested() or (initialised and not rclpy.ok()):  # a signal arrived meanwhile
            return 0
        if spinning:  # a failure that escaped a callback: the traceback is the bug report
            raise
        fatal_line(f"cannot start: {type(err).__name__}: {first_line(err)}")
        return 1
    finally:
        _ignore_further_signals()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's text (its type name if it has none)."""
    return next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)


def fatal_line(text: str) -> None:
    """One ``[FATAL] [gs_tracker_node]: ...`` line on stderr (before rclpy's logging is up)."""
    print(f"[FATAL] [{NODE_NAME}]: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    from .run_node import main as _run

    sys.exit(_run())
