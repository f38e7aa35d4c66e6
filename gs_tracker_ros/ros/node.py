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

The node is an adapter: the tracker holds the tracks and the frames (read back through
``tracker.state()``), :mod:`.messages` builds what is published, and
:mod:`~gs_tracker_ros.tracking.retrack` carries points picked on an earlier image to the newest.

Run: ``gs_tracker_node --ros-args --params-file config/tracker.yaml -r image:=/camera/image_raw``
(or ``python -m gs_tracker_ros.ros.run_node ...``): the process around the node (signals, start-up
errors, exit codes) is :mod:`.run_node`.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from gs_tracker_ros.msg import PointTrackArray
from gs_tracker_ros.srv import AddQueries, RemoveQueries

from ..core.clip_buffer import validate_frame
from ..core.errors import ConfigError, TrackerError
from ..core.seeding import GridSeeder
from ..core.geometry import validate_query_points
from ..core.types import PointTracker, TrackState
from ..methods import make_tracker, method_config
from ..tracking.retrack import FrameHistory, QueryCarrier
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
from .messages import ns_text, stamp_ns, stamp_text, tracks_msg
from .image_subscription import ImageSubscription
from .qos import AUTO, AUTO_OVERRIDE_POLICIES, QOS_OVERRIDE_POLICIES, overriding_options, qos_profile

NODE_NAME = "gs_tracker_node"
# Topic and service names (relative to the node's namespace / private namespace); the tests and
# the launch-file check read these.
SUBSCRIBED_TOPICS = ("image", "camera_info")
PUBLISHED_TOPICS = ("tracks", "tracks_image", "/diagnostics")

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
        # The frames given to the tracker since its last reset, with their stamps and headers: the
        # tracker knows frames, not ROS stamps. It is the one record of what the tracker was fed
        # (size, stamp and frame_id of the latest image) and keeps the last query_history images
        # for ~/add_queries on an earlier image; cleared with every tracker reset.
        self._frames = FrameHistory(int(self._params["query_history"]))
        self._consecutive_failures = 0
        self._history = None  # viz.overlay.TrackHistory, created while the overlay is subscribed
        self._camera_info: CameraInfo | None = None
        # created by configure (services) and activate (topics); None otherwise
        self.add_srv = self.remove_srv = self.reset_srv = None
        self.tracks_pub = self.overlay_pub = self.image_sub = self.info_sub = None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # in every state
        self.diag_timer = self.create_timer(self._params["diagnostics_period_s"], self._publish_diagnostics)
        # two nodes of one name would both track every image and answer every call: say so
        self._name_clash = startup_checks.NameClashCheck(self, self.get_logger().warning)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        if autostart or autostart is None:
            try:
                self.start(force=bool(autostart))
            except TrackerError:
                super().destroy_node()
                raise

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self, stop: threading.Event | None = None, force: bool = False) -> None:
        """Configure and activate, when the ``autostart`` parameter (or ``force``) says so; raise
        :class:`TrackerError` with the reason when configure fails. ``stop``: the process is
        ending (a signal while starting, :mod:`.run_node`): nothing more is started once it is
        set, so a signal during a long configure (a model loading) never leaves a node that
        activates and tracks after it."""
        if not (force or self._params["autostart"]):
            return
        if stop is not None and stop.is_set():
            return
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise TrackerError(self._configure_error or "configure failed")
        if stop is not None and stop.is_set():
            return
        self.trigger_activate()

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
        back: :func:`.run_node.run` then ends the process with exit code 0)."""
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
        latest = self._frames.latest
        hw = latest.shape_hw if latest is not None else None
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
            previous = self._frames.latest
            if previous is not None and self._jumped_back(msg.header, previous.meta):
                self._reset_tracker_locked()  # this image starts afresh, like the first one
                previous = None
            if previous is not None and hw != previous.shape_hw:
                self.get_logger().warning(
                    f"image size changed from {previous.shape_hw[1]}x{previous.shape_hw[0]} to {hw[1]}x{hw[0]}: "
                    f"resetting the tracker ({len(self._live_ids)} track(s) dropped)")
                self._reset_tracker_locked()
            state = self._tracker.step(frame)
            self._frames.record(stamp_ns(msg.header.stamp), frame, meta=msg.header)
            if self._seeder.enabled:
                self._seed(state, hw)
        self._consecutive_failures = 0

        tracks_pub = self.tracks_pub  # None once deactivated
        if tracks_pub is not None:
            tracks_pub.publish(tracks_msg(state, msg.header))
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
        now_ns, prev_ns = stamp_ns(header.stamp), stamp_ns(previous.stamp)
        if now_ns > prev_ns:
            return False
        self.stats.stamp_out_of_order()
        if now_ns == prev_ns:
            self._warn("stamp_repeated",
                       f"image stamped {stamp_text(header.stamp)} has the same stamp as the previous image: "
                       f"tracking it as the next frame anyway (the tracker follows arrival order)")
            return False
        self.stats.jumped_back()
        self._warn("stamp_jump_back",
                   f"image stamped {stamp_text(header.stamp)} is {(prev_ns - now_ns) / 1e9:.3f} s older than the "
                   f"previous image ({stamp_text(previous.stamp)}): time jumped back (a looping bag or a "
                   f"restarted source); resetting the tracker, {len(self._live_ids)} track(s) dropped (add points "
                   f"again with ~/add_queries; grid seeding re-seeds)")
        return True

    def _seed(self, state: TrackState, hw: tuple[int, int]) -> None:
        """Grid seeding on the frame just stepped (tracker lock held)."""
        result = self._seeder.reseed(self._tracker, state, hw[1], hw[0], int(self._params["max_tracks"]))
        if result.changed:
            self.stats.tracks_changed(len(self._live_ids))

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
        """Reset the tracker and what goes with it; the number of tracks dropped."""
        n = len(self._live_ids)
        if self._tracker is not None:
            self._tracker.reset()
        self._seeder.reset()
        self._frames.clear()
        self._history = None
        self.stats.tracks_changed(0)
        return n

    @property
    def _live_ids(self) -> frozenset[int]:
        """The ids the tracker tracks now, read from it (the node keeps no copy; a property under
        the old attribute's name, so that the parameter checks read the tracker too)."""
        with self._tracker_lock:
            tracker = self._tracker
            return frozenset(tracker.state().ids.tolist()) if tracker is not None else frozenset()

    @property
    def latest_stamp(self):
        """The header stamp of the latest image given to the tracker (None before the first one
        and after a reset)."""
        latest = self._frames.latest
        return latest.meta.stamp if latest is not None else None

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
        stamp = stamp_ns(request.stamp)
        if stamp:
            return self._add_on_earlier_image(xy, stamp, response)
        with self._tracker_lock:
            return self._add_locked(xy, response)

    def _add_locked(self, xy: np.ndarray, response: AddQueries.Response, note: str = "") -> AddQueries.Response:
        """Add ``xy`` on the most recent processed image (tracker lock held)."""
        latest = self._frames.latest
        if latest is None:
            return _fail(response, f"no image received yet: queries are placed on the most recent image; "
                                   f"publish images on '{self._image_topic}' first")
        try:
            validate_query_points(xy, latest.shape_hw)
        except TrackerError as err:
            return _fail(response, str(err))
        max_tracks = int(self._params["max_tracks"])
        live = len(self._live_ids)
        if live + xy.shape[0] > max_tracks:
            return _fail(response, f"adding {xy.shape[0]} point(s) would exceed max_tracks={max_tracks} ({live} live)")
        try:
            ids = np.asarray(self._tracker.add_queries(xy), np.int64)
        except (TrackerError, KeyError, ValueError) as err:
            return _fail(response, _err_text(err))
        self.stats.tracks_changed(live + ids.size)
        response.success = True
        response.ids = ids.tolist()
        response.message = f"added {ids.size} point(s) on the image stamped {stamp_text(latest.meta.stamp)}" + note
        return response

    def _add_on_earlier_image(self, xy: np.ndarray, stamp: int,
                              response: AddQueries.Response) -> AddQueries.Response:
        """Points picked on an earlier, still buffered image: a second tracker of the same method
        and config carries them from that image through the later ones to the most recent image
        (:class:`~gs_tracker_ros.tracking.retrack.QueryCarrier`, run without the tracker lock, so
        tracking goes on meanwhile), where they are handed over as queries of that image."""
        with self._tracker_lock:
            start = self._frames.find(stamp)
            generation = self._frames.generation
            span = self._frames.stamp_span()
            held = len(self._frames)
            newer = self._frames.after(start.seq) if start is not None else []
        if start is None:
            held = (f"it holds {held} image(s), stamped {ns_text(span[0])} to {ns_text(span[1])}"
                    if span else "it holds none yet")
            return _fail(response, f"no processed image stamped {ns_text(stamp)} in the node's history "
                                   f"(query_history={self._params['query_history']}: {held}); "
                                   f"send stamp 0 for the most recent image")
        try:
            validate_query_points(xy, start.shape_hw)
        except TrackerError as err:
            return _fail(response, str(err))
        if not newer:  # it is the most recent image after all
            with self._tracker_lock:
                if self._frames.generation == generation and self._frames.latest is not None \
                        and self._frames.latest.seq == start.seq:
                    return self._add_locked(xy, response)
        try:
            carrier = QueryCarrier(self._build_tracker, start, xy)
            return self._hand_over(carrier, newer, generation, stamp, response)
        except Exception as err:  # the second tracker failed: the service answers, the node goes on
            text = f"cannot track the points from the image stamped {ns_text(stamp)}: {type(err).__name__}: " \
                   f"{_err_text(err)}"
            self.get_logger().error(text)
            return _fail(response, text)

    def _hand_over(self, carrier: QueryCarrier, newer: list, generation: int, stamp: int,
                   response: AddQueries.Response) -> AddQueries.Response:
        """Follow the images newer than the carrier's until none is left, then add the points to
        the node's tracker (under its lock, so no image slips in between)."""
        while True:
            carrier.follow(newer)
            with self._tracker_lock:
                if self._frames.generation != generation:
                    return _fail(response, "the tracker was reset while the points were tracked to the most "
                                           "recent image; nothing was added")
                newer = self._frames.after(carrier.seq)
                if newer:
                    continue  # newer images arrived meanwhile: follow them too (lock released)
                moved, hidden = carrier.positions()
                if carrier.steps == 0:
                    return self._add_locked(moved, response)
                n_hidden = int(hidden.sum())
                note = (f" (picked on the image stamped {ns_text(stamp)} and tracked over {carrier.steps} image(s)"
                        + (f"; {n_hidden} of them judged occluded on the way, placed where predicted"
                           if n_hidden else "")
                        + ")")
                return self._add_locked(moved, response, note)

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
        latest = self._frames.latest
        extra["image_size"] = f"{latest.shape_hw[1]}x{latest.shape_hw[0]}" if latest is not None else "none"
        info = self._camera_info
        extra["camera_info"] = f"{info.width}x{info.height}" if info is not None else "none"
        schedule = getattr(self._tracker, "schedule", None)  # the long chains' / observer's period
        if schedule is not None:
            extra["heavy_stage_stride"] = str(schedule.stride)
            if schedule.config.frame_budget_ms > 0:
                extra["step_ms_mean"] = f"{schedule.mean_ms:.1f} (budget {schedule.config.frame_budget_ms:g})"
        header = latest.meta if latest is not None else None
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
