"""``gs-tracker bag replay-eval``: bag -> live tracker node over DDS -> recorded tracks -> metrics.

The tracker node runs as a separate process (``python -m gs_tracker_ros.ros.run_node --ros-args ...``,
or ``--node-cmd``), on the ROS_DOMAIN_ID of the environment unless ``domain_id`` is given. This
process publishes the bag's images to it, places the ground-truth queries through the node's
``~/add_queries`` service, receives the node's ``tracks`` and scores them with the functions of
``gs-tracker eval``.

Timing semantics (``mode``):

``timed`` (default)
    Images go out at their recorded log times divided by ``rate``, like ``ros2 bag play``. At a
    frame that carries queries the player waits until the node's tracks for that image's stamp
    have arrived, calls ``~/add_queries`` (the node places queries on the latest image it
    processed, which is then exactly that frame), waits for the answer, and shifts the rest of the
    schedule by the time this took (the stream pauses; spacing between images is kept). Frames the
    node skips because it is still busy (its one-slot mailbox) show up as ``dropped_frames``.
``lockstep``
    Every image waits for the node's tracks of the previous one (no clock): never drops, and the
    node sees exactly the frames ``gs-tracker eval`` gives the tracker in-process.

Latency = time from the ``publish()`` of an image to the receipt of the node's tracks with its
stamp, both taken in this process (monotonic clock). A frame whose tracks did not arrive within
``frame_timeout_s`` after the last image counts as dropped; its predictions are missing (NaN
positions, not visible), which the metrics count as misses.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import InputError, TrackerError
from .groundtruth import GT_QUERIES_TOPIC, GT_TRACKS_TOPIC, BagSequence, find_bags, load_bag_sequence
from .io import GT_METADATA_KEY, BagWriter, check_bag_output, iter_messages, read_custom_data
from .score import REPLAY_METADATA_KEY, SequenceReplay, format_line, replay_metadata, score_replays
from ..ros.process import NodeProcess
from .typestore import TRACKS_TYPE

MODES = ("timed", "lockstep")
NODE_NAME = "gs_tracker_replay"
DEFAULT_TRACKS_TOPIC = "/tracks"


class ReplayError(TrackerError):
    """The replay could not run (node did not start, services failed, ...)."""


@dataclass
class ReplayOptions:
    """Options of :func:`replay_eval` (see the module docstring)."""

    rate: float = 1.0
    mode: str = "timed"
    method: str | None = None
    params_file: Path | None = None
    node_params: list[str] = field(default_factory=list)  # extra "name:=value"
    image_qos: str = "reliable"  # the node's image_qos parameter and this player's publisher QoS
    domain_id: int | None = None
    node_cmd: list[str] | None = None
    node_name: str = NODE_NAME
    tracks_topic: str = DEFAULT_TRACKS_TOPIC
    startup_timeout_s: float = 60.0
    frame_timeout_s: float = 10.0
    record: Path | None = None
    record_format: str = "sqlite3"
    overwrite: bool = False
    log_dir: Path | None = None
    quiet: bool = False
    large_data_shm: bool = True  # Fast DDS shared memory sized for the images (see bag_player)

    def check(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown --mode '{self.mode}' (choose {' or '.join(MODES)})")
        if not self.rate > 0:
            raise InputError(f"--rate must be > 0, got {self.rate}")
        from ..ros.qos import QOS_PROFILES

        if self.image_qos not in QOS_PROFILES:
            raise InputError(f"--image-qos must be one of {', '.join(QOS_PROFILES)}, got '{self.image_qos}'")
        if self.params_file is not None and not Path(self.params_file).is_file():
            raise InputError(f"--params-file not found: {self.params_file}")
        from ..ros.parameters import check_parameter_names

        check_parameter_names(self.node_params)  # a typo ends the run before anything starts
        if self.domain_id is not None and not 0 <= self.domain_id <= 232:
            raise InputError(f"--domain-id must be in [0, 232], got {self.domain_id}")
        if self.method is not None:
            from ..methods import method_names

            if self.method not in method_names():
                raise InputError(f"unknown method '{self.method}'; choose one of: {', '.join(method_names())}")


def _domain_id(opts: ReplayOptions) -> int:
    if opts.domain_id is not None:
        return int(opts.domain_id)
    text = os.environ.get("ROS_DOMAIN_ID", "").strip()
    return int(text) if text.isdigit() else 0


# ------------------------------------------------------------------------------------ the node
def start_node(opts: ReplayOptions, image_topic: str, log_path: Path) -> NodeProcess:
    """The tracker node for a replay, in a child process (overlay off, tracks on ``opts.tracks_topic``)."""
    ros_args = ["-r", f"__node:={opts.node_name}", "-r", f"image:={image_topic}", "-r", f"tracks:={opts.tracks_topic}"]
    if opts.params_file is not None:
        ros_args += ["--params-file", str(Path(opts.params_file).resolve())]
    ros_args += ["-p", f"image_qos:={opts.image_qos}", "-p", "publish_overlay:=false"]
    if opts.method:
        ros_args += ["-p", f"method:={opts.method}"]
    for item in opts.node_params:
        ros_args += ["-p", item]
    env = dict(os.environ)
    if opts.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(opts.domain_id)
    env.setdefault("ROS_LOG_DIR", str(log_path.parent / "ros_log"))
    env["PYTHONUNBUFFERED"] = "1"
    if opts.node_cmd:
        return NodeProcess([*opts.node_cmd, "--ros-args", *ros_args], env, log_path)
    return NodeProcess.node(ros_args, env, log_path)


# ------------------------------------------------------------------------------------ replay
class _Session:
    """rclpy objects of one replay: publisher of images, tracks listener, service client."""

    def __init__(self, opts: ReplayOptions, image_topic: str, image_type: str) -> None:
        from ..ros.bag_player import BagPublishers, Spinner, create_node, init_context
        from ..ros.qos import qos_profile
        from ..ros.recorder import TrackerNodeClient, TracksListener

        self.context = init_context(opts.domain_id)
        self.node = create_node("gs_tracker_replay_driver", self.context)
        qos = qos_profile(opts.image_qos, depth=5)  # the same profile name as the node's image_qos
        self.pubs = BagPublishers(self.node, {image_topic: image_type}, qos)
        self.image_topic = image_topic
        self.listener = TracksListener(self.node, opts.tracks_topic, qos_profile("reliable", depth=100))
        self.client = TrackerNodeClient(self.node, "/" + opts.node_name)
        self.spinner = Spinner(self.node, self.context)

    def close(self) -> None:
        try:
            self.spinner.stop()
            self.node.destroy_node()
        finally:
            self.context.try_shutdown()


def _wait_ready(session: _Session, node: NodeProcess, opts: ReplayOptions, log: Callable[[str], None]) -> None:
    timeout_s = opts.startup_timeout_s
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while True:
        if not node.alive():
            refused = [ln.split("cannot start: ", 1)[1] for ln in node.log_text().splitlines() if "cannot start: " in ln]
            if node.proc.returncode == 2 and refused:  # the node's own one-line reason (bad parameter, ...)
                raise ReplayError(f"the tracker node refused to start: {refused[-1]} (log {node.log_path})")
            raise ReplayError(f"the tracker node exited with status {node.proc.returncode} while starting "
                              f"(log {node.log_path}):\n{node.tail()}")
        ready = (session.pubs.publishers[session.image_topic].get_subscription_count() > 0
                 and session.listener.publisher_count() > 0 and session.client.services_ready())
        if ready:
            break
        if time.monotonic() > deadline:
            raise ReplayError(f"the tracker node did not come up within {timeout_s:.0f} s (image subscriber, "
                              f"tracks publisher and services on DDS domain "
                              f"{_domain_id(opts)}); log {node.log_path}:\n{node.tail()}")
        time.sleep(0.05)
    # A service round trip: the node's executor is spinning, matching has settled.
    session.client.reset(timeout_s=max(5.0, deadline - time.monotonic()))
    time.sleep(0.2)
    log(f"node ready after {time.monotonic() - t0:.1f} s")


@dataclass
class _Progress:
    """What the replay of one sequence has produced so far; kept when the run is interrupted.

    Attributes:
        gt: the sequence.
        start: ``time.monotonic()`` when its replay began.
        pub_time: ``(T,)`` monotonic publish time of each frame (NaN: not published yet).
        image_log_ns: frame -> the image's log time in the source bag (ns).
        id_to_row: tracker id -> point row of ``gt.seq``.
        published: images published so far.
    """

    gt: BagSequence
    start: float
    pub_time: np.ndarray
    image_log_ns: dict[int, int] = field(default_factory=dict)
    id_to_row: dict[int, int] = field(default_factory=dict)
    published: int = 0

    @classmethod
    def begin(cls, gt: BagSequence) -> "_Progress":
        return cls(gt, time.monotonic(), np.full(len(gt.stamps_ns), np.nan))


def _replay_sequence(session: _Session, progress: _Progress, node: NodeProcess, opts: ReplayOptions,
                     log: Callable[[str], None]) -> None:
    """Publish ``progress.gt``'s images (and place its queries), recording into ``progress``."""
    from ..ros.bag_player import sleep_until
    from ..ros.recorder import cdr_header_stamp_ns

    gt = progress.gt
    queries = gt.queries_by_frame()
    stamps = gt.stamps_ns
    t_all = len(stamps)
    session.listener.clear()
    images = iter_messages(gt.bag, [gt.image_topic])
    frame_of = gt.frame_of_stamp()
    start = progress.start
    shift = 0.0
    first_log = None
    for _, _, log_ns, raw in images:
        stamp = cdr_header_stamp_ns(raw)
        t = frame_of.get(stamp)
        if t is None:  # cannot happen for a bag load_bag_sequence accepted
            raise ReplayError(f"bag {gt.bag}: image stamp {stamp} not among the sequence's stamps")
        if first_log is None:
            first_log = log_ns
        if opts.mode == "timed":
            sleep_until(start + shift + (log_ns - first_log) / 1e9 / opts.rate)
        elif progress.published:
            prev = stamps[t - 1] if t > 0 else None
            if prev is not None and session.listener.wait_for(int(prev), opts.frame_timeout_s) is None:
                log(f"warning: no tracks for frame {t - 1} within {opts.frame_timeout_s:.0f} s")
        if not node.alive():
            raise ReplayError(f"the tracker node died during the replay (status {node.proc.returncode}); "
                              f"log {node.log_path}:\n{node.tail()}")
        progress.pub_time[t] = time.monotonic()
        session.pubs.publish(gt.image_topic, raw)
        progress.published += 1
        progress.image_log_ns[t] = log_ns
        if t in queries:
            rows, xy = queries[t]
            t0 = time.monotonic()
            if session.listener.wait_for(int(stamp), opts.frame_timeout_s) is None:
                raise ReplayError(f"no tracks from the node for query frame {t} (stamp {stamp} ns) within "
                                  f"{opts.frame_timeout_s:.0f} s; log {node.log_path}:\n{node.tail()}")
            ids = session.client.add_queries(xy, timeout_s=opts.frame_timeout_s)
            progress.id_to_row.update({int(i): int(r) for i, r in zip(ids, rows)})
            shift += time.monotonic() - t0
    if progress.published != t_all:
        raise ReplayError(f"bag {gt.bag}: published {progress.published} images, expected {t_all}")
    # Wait for the last frame's tracks (or give up after the timeout: then it was dropped).
    session.listener.wait_for(int(stamps[-1]), opts.frame_timeout_s)
    time.sleep(0.05)


def _collect(session: _Session, progress: _Progress) -> SequenceReplay:
    """The :class:`SequenceReplay` of what came back for ``progress`` (all of it, or as far as an
    interrupted run got: frames never published count as missing)."""
    gt = progress.gt
    frame_of = gt.frame_of_stamp()
    t_all = len(gt.stamps_ns)
    tracks: dict[int, bytes] = {}
    latency = np.full(t_all, np.nan)
    received = list(session.listener.messages)
    for item in received:
        t = frame_of.get(item.stamp_ns)
        if t is None or int(item.stamp_ns) in tracks:
            continue
        tracks[int(item.stamp_ns)] = item.raw
        latency[t] = (item.mono_s - progress.pub_time[t]) * 1e3
    rep = SequenceReplay(gt, dict(progress.id_to_row), tracks, latency)
    rep.extra["received"] = received
    rep.extra["image_log_ns"] = dict(progress.image_log_ns)
    rep.extra["pub_time"] = progress.pub_time
    rep.extra["frames_published"] = progress.published
    receipts = sorted(item.mono_s for item in received)
    rep.extra["wall_s"] = time.monotonic() - progress.start
    rep.extra["tracks_fps"] = ((len(receipts) - 1) / (receipts[-1] - receipts[0])
                               if len(receipts) > 1 and receipts[-1] > receipts[0] else float("nan"))
    return rep


def _record(path: Path, rep: SequenceReplay, opts: ReplayOptions) -> Path:
    """Write the node's tracks plus the bag's ground truth to a new bag. Log time of a tracks
    message = its image's log time in the source bag + the measured latency."""
    gt_meta = read_custom_data(rep.gt.bag).get(GT_METADATA_KEY) if rep.gt.bag.is_dir() else None
    extra = {"tracks_topic": opts.tracks_topic, "mode": opts.mode, "rate": opts.rate,
             "image_topic": rep.gt.image_topic,
             "frames_published": int(rep.extra.get("frames_published", len(rep.gt.stamps_ns))),
             "interrupted": bool(rep.extra.get("interrupted", False))}
    custom = {REPLAY_METADATA_KEY: replay_metadata(rep, extra)}
    if gt_meta:
        custom[GT_METADATA_KEY] = gt_meta
    frame_of = rep.gt.frame_of_stamp()
    image_log = rep.extra.get("image_log_ns", {})
    pub_time = rep.extra.get("pub_time")
    with BagWriter(path, storage=opts.record_format, overwrite=opts.overwrite, custom_data=custom) as w:
        w.add_topic(opts.tracks_topic, TRACKS_TYPE)
        for item in rep.extra.get("received", []):
            t = frame_of.get(item.stamp_ns)
            if t is None or t not in image_log:
                continue  # not an answer to one of this sequence's images
            # On the bag's clock: the image's log time + the observed latency, so the recording
            # lines up with the source bag (ros2 bag play of both together stays in sync).
            delay_ns = max(0, int(round((item.mono_s - pub_time[t]) * 1e9)))
            w.write(opts.tracks_topic, image_log[t] + delay_ns, item.raw)
        for topic, msgtype, log_ns, raw in iter_messages(rep.gt.bag, [GT_TRACKS_TOPIC, GT_QUERIES_TOPIC]):
            w.add_topic(topic, msgtype)
            w.write(topic, log_ns, raw)
    return path


def replay_eval(bags: Sequence[str | Path], opts: ReplayOptions | None = None,
                log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Replay labelled bags through a live node and score it; returns the eval-schema dict (plus
    ``"replay"``: mode, rate, node command, domain). See the module docstring."""
    return run_replay(bags, opts, log)[0]


def run_replay(bags: Sequence[str | Path], opts: ReplayOptions | None = None,
               log: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[SequenceReplay]]:
    """:func:`replay_eval` that also returns what came back per sequence."""
    opts = opts or ReplayOptions()
    opts.check()
    log = log or ((lambda s: None) if opts.quiet else (lambda s: print(s, file=sys.stderr, flush=True)))
    paths = find_bags(list(bags))
    gts = [load_bag_sequence(p) for p in paths]
    names = [g.seq.name for g in gts]
    if len(set(names)) != len(names):
        raise InputError(f"several bags hold a sequence of the same name ({', '.join(names)})")
    image_topics = {g.image_topic for g in gts}
    if len(image_topics) != 1:
        raise InputError(f"the bags use different image topics ({', '.join(sorted(image_topics))})")
    image_topic = image_topics.pop()
    if opts.record is not None:
        targets = [Path(opts.record)] if len(gts) == 1 else [Path(opts.record) / g.seq.name for g in gts]
        for tgt in targets:  # before the replay: a bag that cannot be written fails now, not after it
            check_bag_output(tgt, opts.overwrite, "--record")

    tmp = None
    log_dir = opts.log_dir
    if log_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="gs_tracker_replay_")
        log_dir = Path(tmp.name)
    log_dir.mkdir(parents=True, exist_ok=True)
    if opts.large_data_shm:
        from ..ros.bag_player import configure_large_messages

        biggest = max(g.seq.image_hw[0] * g.seq.image_hw[1] * 4 for g in gts) + 4096
        profile = configure_large_messages(biggest)
        if profile:
            log(f"Fast DDS profile with a large shared-memory segment: {profile}")
    node = None
    session = None
    replays: list[SequenceReplay] = []
    current: _Progress | None = None
    interrupted: KeyboardInterrupt | None = None
    method = opts.method or "?"
    with signals_as_keyboard_interrupt():  # SIGTERM too: the node child is always stopped
        try:
            node = start_node(opts, image_topic, log_dir / "node.log")
            log(f"started the tracker node: {shlex.join(node.cmd)}")
            session = _Session(opts, image_topic, "sensor_msgs/msg/Image")
            _wait_ready(session, node, opts, log)
            method = opts.method or session.client.get_parameter("method") or "?"
            for i, gt in enumerate(gts):
                if i:
                    session.client.reset(timeout_s=opts.frame_timeout_s)
                current = _Progress.begin(gt)
                _replay_sequence(session, current, node, opts, log)
                rep = _collect(session, current)
                current = None
                rep.method = str(method)
                replays.append(rep)
                one = score_replays([rep], str(method))["sequences"][gt.seq.name]
                log(f"[{method} via ROS, {opts.mode}] " + format_line(gt.seq.name, one))
        except KeyboardInterrupt as err:
            interrupted = err
            if current is not None and current.published and session is not None:
                rep = _collect(session, current)  # what came back before the interrupt
                rep.method = str(method)
                rep.extra["interrupted"] = True
                replays.append(rep)
        except TrackerError:
            raise
        except Exception as err:  # rclpy / service failures: one clear line plus the node's log
            from ..ros.recorder import ServiceError

            if isinstance(err, ServiceError) and node is not None:
                raise ReplayError(f"{err}; node log {node.log_path}:\n{node.tail()}") from None
            raise
        finally:
            with signals_held():  # a second Ctrl-C must not leave the node running
                if session is not None:
                    session.close()
                if node is not None:
                    node.stop()
    if interrupted is not None:
        raise _interrupted(replays, len(gts), targets if opts.record is not None else None, opts) from None
    result = score_replays(replays, str(method))
    log(f"[{method} via ROS, {opts.mode}] " + format_line("overall", result["overall"]))
    result["replay"] = {"mode": opts.mode, "rate": opts.rate, "image_qos": opts.image_qos,
                        "node_cmd": node.cmd, "domain_id": _domain_id(opts), "bags": [str(p) for p in paths]}
    if opts.record is not None:
        with signals_held():
            recorded = [str(_record(tgt, rep, opts)) for rep, tgt in zip(replays, targets)]
        result["replay"]["recorded"] = recorded
        log("recorded tracks -> " + ", ".join(recorded))
    for rep in replays:
        rep.extra.pop("received", None)
    if tmp is not None:
        tmp.cleanup()
    return result, replays


class ReplayInterrupted(KeyboardInterrupt):
    """SIGINT / SIGTERM during a replay; the message says what was recorded (the CLI prints it
    on one line and exits with 130)."""


def _interrupted(replays: list[SequenceReplay], total: int, targets: list[Path] | None,
                 opts: ReplayOptions) -> ReplayInterrupted:
    """Write what an interrupted run got (every bag closed, so it is readable) and say so."""
    done = [r for r in replays if not r.extra.get("interrupted")]
    text = f"{len(done)} of {total} sequence(s) finished"
    partial = [r for r in replays if r.extra.get("interrupted")]
    if partial:
        r = partial[0]
        text += f", {r.gt.seq.name} stopped after {r.extra['frames_published']} of {len(r.gt.stamps_ns)} frames"
    if targets is None:
        return ReplayInterrupted(text + "; nothing recorded (no --record)")
    if not replays:
        return ReplayInterrupted(text + "; nothing to record yet")
    with signals_held():
        recorded = [str(_record(tgt, rep, opts)) for rep, tgt in zip(replays, targets)]
    return ReplayInterrupted(text + "; recorded what came back -> " + ", ".join(recorded))


@contextmanager
def signals_as_keyboard_interrupt():
    """SIGTERM raises KeyboardInterrupt like SIGINT (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_held():
    """Ignore SIGINT / SIGTERM while a bag is closed or a child is stopped (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
