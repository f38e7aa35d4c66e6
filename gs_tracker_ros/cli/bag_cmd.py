"""``gs-tracker bag``: make, inspect, play and evaluate with rosbag2 bags (see docs/bags.md)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..core.errors import InputError
from ..core.output import check_output, write_json
from ..ros.qos import QOS_PROFILES

IMAGE_TOPIC = "/camera/image_raw"
# Options of `bag make` for the generated scene only (SyntheticOptions' fields; None = not given).
SYNTHETIC_OPTIONS = ("width", "height", "frames", "points", "grid", "seed", "scene_seed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bag", help="rosbag2 tools: make bags, play them over DDS, evaluate the ROS node on them",
                       description="rosbag2 (sqlite3 / mcap) tools; see docs/bags.md.")
    bag_sub = p.add_subparsers(dest="bag_command", metavar="ACTION", required=True)
    _register_make(bag_sub)
    _register_info(bag_sub)
    _register_play(bag_sub)
    _register_replay_eval(bag_sub)
    _register_latency(bag_sub)
    _register_score(bag_sub)


# ------------------------------------------------------------------------------------ make
def _register_make(bag_sub) -> None:
    m = bag_sub.add_parser("make", help="make a bag from a video, frames folder, BADJA data or 'synthetic'",
                           description="Write INPUT's frames as sensor_msgs/Image rgb8 into a rosbag2 bag. "
                                       "A BADJA sequence also gets its ground truth (/ground_truth/tracks, "
                                       "/ground_truth/queries); a BADJA dataset folder gives one bag per "
                                       "sequence under OUT; 'synthetic' is the generated demo scene with its "
                                       "exact ground truth.")
    m.add_argument("input", help="video file, folder of images, BADJA sequence or dataset dir, or 'synthetic'")
    m.add_argument("--out", type=Path, required=True, metavar="BAG", help="output bag directory")
    m.add_argument("--format", choices=("sqlite3", "mcap"), default="sqlite3", help="storage format (default sqlite3)")
    m.add_argument("--topic", default=IMAGE_TOPIC,
                   help=f"image topic, a valid ROS name (default {IMAGE_TOPIC}; a leading / is added)")
    m.add_argument("--fps", type=float, default=None,
                   help="frame rate of the stamps, in (0, 1e6] (default: the video's own rate, else 30)")
    m.add_argument("--frame-id", default="camera", help="header.frame_id of the images (default camera)")
    m.add_argument("--start-time", type=float, default=None, metavar="SEC",
                   help="stamp of the first image in seconds since the epoch, in [0, 2^31 - 1] (default "
                        "1700000000, fixed so that bags are reproducible)")
    m.add_argument("--max-frames", type=int, default=None, help="use at most this many frames")
    m.add_argument("--overwrite", action="store_true", help="replace an existing output bag")
    g = m.add_argument_group("synthetic input")
    g.add_argument("--width", type=int, default=None, help="scene width in px (default 640)")
    g.add_argument("--height", type=int, default=None, help="scene height in px (default 360)")
    g.add_argument("--frames", type=int, default=None, help="scene length in frames (default 120)")
    g.add_argument("--points", type=int, default=None, help="random query points on frame 0 (default 256)")
    g.add_argument("--grid", type=int, default=None, metavar="N", help="an N x N grid of queries instead of --points")
    g.add_argument("--seed", type=int, default=None, help="seed of the random queries (default 0)")
    g.add_argument("--scene-seed", type=int, default=None, help="seed of the scene (default 0: the demo scene)")
    m.set_defaults(func=run_make)


def run_make(args: argparse.Namespace) -> int:
    from ..bag.make import DEFAULT_START_TIME_S, SyntheticOptions, make_bags, print_progress
    from ..bag.io import bag_info

    given = [name for name in SYNTHETIC_OPTIONS if getattr(args, name) is not None]
    if args.input != "synthetic" and given:
        raise InputError(f"--{given[0].replace('_', '-')} only applies to the 'synthetic' input "
                         f"(synthetic-only options: {', '.join('--' + n.replace('_', '-') for n in SYNTHETIC_OPTIONS)})")
    synthetic = SyntheticOptions(**{name: getattr(args, name) for name in given})
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    start = DEFAULT_START_TIME_S if args.start_time is None else args.start_time
    made = make_bags(args.input, args.out, storage=args.format, topic=args.topic, fps=args.fps,
                     frame_id=args.frame_id, start_time_s=start, overwrite=args.overwrite,
                     max_frames=args.max_frames, synthetic=synthetic, progress=print_progress)
    for path in made:
        info = bag_info(path)
        topics = ", ".join(f"{t} ({n})" for t, (_, n) in sorted(info.topics.items()))
        print(f"{path}: {info.storage}, {info.duration_s:.2f} s, {topics}")
    return 0


# ------------------------------------------------------------------------------------ info
def _register_info(bag_sub) -> None:
    i = bag_sub.add_parser("info", help="list a bag's topics, counts, duration and ground truth")
    i.add_argument("bag", type=Path)
    i.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from ..bag.groundtruth import read_gt_metadata
    from ..bag.io import bag_info

    info = bag_info(args.bag)
    print(f"bag:       {info.path} ({info.storage})")
    print(f"duration:  {info.duration_s:.3f} s, {info.message_count} messages")
    for topic, (msgtype, n) in sorted(info.topics.items()):
        print(f"  {topic:32s} {msgtype:40s} {n}")
    meta = read_gt_metadata(args.bag) if args.bag.is_dir() else {}
    if meta:
        print(f"ground truth: {meta.get('kind')} sequence '{meta.get('sequence')}', "
              f"{meta.get('image_hw', ['?', '?'])[1]}x{meta.get('image_hw', ['?', '?'])[0]}, fps {meta.get('fps')}")
    return 0


# ------------------------------------------------------------------------------------ play
def _register_play(bag_sub) -> None:
    pl = bag_sub.add_parser("play", help="publish a bag's messages over DDS (like `ros2 bag play`)",
                            description="Publish the bag's recorded messages (CDR bytes as-is) with their "
                                        "recorded timing divided by --rate.")
    pl.add_argument("bag", type=Path)
    pl.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    pl.add_argument("--loop", action="store_true", help="start over after the last message (Ctrl-C stops)")
    pl.add_argument("--remap", nargs="+", action="extend", default=[], metavar="FROM:=TO",
                    help="publish topic FROM on TO (repeatable)")
    pl.add_argument("--topics", nargs="+", default=None, metavar="TOPIC", help="play only these topics")
    pl.add_argument("--qos", choices=QOS_PROFILES, default="reliable",
                    help="publisher QoS profile: reliable (default, depth 10), sensor_data (best effort) or system_default")
    pl.add_argument("--wait-for-subscribers", type=float, default=10.0, metavar="SEC",
                    help="wait up to SEC seconds for a subscriber before playing (0: don't wait; default 10)")
    pl.add_argument("--wait-all", action="store_true", help="wait until every played topic has a subscriber")
    pl.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: the environment's)")
    pl.add_argument("--no-shm", action="store_true",
                    help="keep Fast DDS's default transports (by default a shared-memory segment sized for "
                         "the bag's largest message is configured, unless FASTDDS_DEFAULT_PROFILES_FILE is set)")
    pl.set_defaults(func=run_play)


def run_play(args: argparse.Namespace) -> int:
    from ..bag.play import play_bag

    stats = play_bag(args.bag, rate=args.rate, loop=args.loop, remap=args.remap, topics=args.topics, qos=args.qos,
                     wait_subscribers_s=args.wait_for_subscribers, wait_all=args.wait_all,
                     domain_id=args.domain_id, large_data_shm=not args.no_shm)
    print(json.dumps(stats))
    return 0


# ------------------------------------------------------------------------------------ replay-eval
def _add_replay_options(r: argparse.ArgumentParser, default_mode: str = "timed") -> None:
    from ..methods import method_names

    r.add_argument("--rate", type=float, default=1.0, help="playback speed factor in timed mode (default 1.0)")
    r.add_argument("--mode", choices=("timed", "lockstep"), default=default_mode,
                   help="timed: recorded timing x rate, pausing only to place queries (default); "
                        "lockstep: each image waits for the previous image's tracks")
    r.add_argument("--method", default=None, choices=method_names(),
                   help="the node's tracking method (default: the node's own default / params file)")
    r.add_argument("--params-file", type=Path, default=None, metavar="YAML", help="ROS parameters file for the node")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", dest="node_params",
                   help="extra node parameter (repeatable), e.g. -p tracker.integration.outlier_px:=8")
    r.add_argument("--image-qos", choices=QOS_PROFILES, default="reliable",
                   help="QoS of the image stream, both ends (default reliable: nothing lost in transport)")
    r.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: the environment's, else 0)")
    r.add_argument("--node-cmd", default=None, metavar="CMD",
                   help="command that starts the node (default: python -m gs_tracker_ros.ros.run_node); "
                        "--ros-args ... are appended")
    r.add_argument("--tracks-topic", default="/tracks", help="topic the node's tracks are remapped to (default /tracks)")
    r.add_argument("--startup-timeout", type=float, default=60.0, metavar="SEC",
                   help="how long to wait for the node to come up (default 60)")
    r.add_argument("--frame-timeout", type=float, default=10.0, metavar="SEC",
                   help="how long to wait for a frame's tracks / a service answer (default 10)")
    r.add_argument("--no-shm", action="store_true", help="keep Fast DDS's default transports (see bag play)")
    r.add_argument("--log-dir", type=Path, default=None, help="keep the node's log here (default: a temp dir)")


def _replay_options(args: argparse.Namespace, **extra):
    import shlex

    from ..bag.replay_eval import ReplayOptions

    return ReplayOptions(rate=args.rate, mode=args.mode, method=args.method, params_file=args.params_file,
                         node_params=list(args.node_params), image_qos=args.image_qos, domain_id=args.domain_id,
                         node_cmd=shlex.split(args.node_cmd) if args.node_cmd else None,
                         tracks_topic=args.tracks_topic, startup_timeout_s=args.startup_timeout,
                         frame_timeout_s=args.frame_timeout, large_data_shm=not args.no_shm, log_dir=args.log_dir,
                         **extra)


def _register_replay_eval(bag_sub) -> None:
    r = bag_sub.add_parser("replay-eval", help="play labelled bags to the live ROS node and score its tracks",
                           description="Start the tracker node, play the bag(s) to it over DDS, place the "
                                       "ground-truth queries through ~/add_queries, record its tracks and score "
                                       "them like `gs-tracker eval`.")
    r.add_argument("bags", nargs="+", type=Path, metavar="BAG", help="bag(s) made by `bag make`, or folders of bags")
    r.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the scores as JSON (eval's schema + "
                   "dropped_frames, latency_ms_p50, latency_ms_p95)")
    r.add_argument("--record", type=Path, default=None, metavar="OUT_BAG",
                   help="record the node's tracks (+ the ground truth) to this bag (a folder of bags for several)")
    r.add_argument("--record-format", choices=("sqlite3", "mcap"), default="sqlite3")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --record bag")
    _add_replay_options(r)
    r.set_defaults(func=run_replay_eval)


def _print_table(result: dict) -> None:
    from ..evaluation.metrics import SCORE_KEYS

    keys = list(SCORE_KEYS)
    head = keys + ["dropped", "lat p50 ms", "lat p95 ms"]
    print("| sequence | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    rows = list(result["sequences"].items()) + [("overall", result["overall"])]
    for name, s in rows:
        cells = ["nan" if math.isnan(s[k]) else f"{100 * s[k]:.1f}" for k in keys]
        cells += [f"{s['dropped_frames']}/{s['frames']}", f"{s['latency_ms_p50']:.1f}", f"{s['latency_ms_p95']:.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"({result['method']} in the ROS node, {result['replay']['mode']} replay at rate "
          f"{result['replay']['rate']:g}; scores in %)")


def _check_json(path: Path | None) -> None:
    """Refuse a ``--json`` path that cannot be written, before the replay."""
    if path is not None:
        check_output(path, "--json")


def _write_json(path: Path | None, result: dict) -> None:
    if path is None:
        return
    print(f"scores -> {write_json(path, result)}")


def run_replay_eval(args: argparse.Namespace) -> int:
    from ..bag.replay_eval import replay_eval

    _check_json(args.json)
    opts = _replay_options(args, record=args.record, record_format=args.record_format, overwrite=args.overwrite)
    result = replay_eval(args.bags, opts)
    _print_table(result)
    _write_json(args.json, result)
    return 0


# ------------------------------------------------------------------------------------ latency
def _register_latency(bag_sub) -> None:
    la = bag_sub.add_parser("latency", help="measure the node's end-to-end latency on a generated stream",
                            description="Make a synthetic bag (default 854x480, 30 fps, 16x16 grid = 256 points, "
                                        "150 frames), play it to the live node at its frame rate and report "
                                        "latency (image publish -> tracks receipt) p50/p95, drops and accuracy.")
    la.add_argument("--width", type=int, default=854)
    la.add_argument("--height", type=int, default=480)
    la.add_argument("--fps", type=float, default=30.0)
    la.add_argument("--frames", type=int, default=150)
    la.add_argument("--grid", type=int, default=16, help="N x N query grid on frame 0 (default 16: 256 points)")
    la.add_argument("--bag", type=Path, default=None,
                    help="where to keep the generated bag (default: a temp dir; reused when it exists)")
    la.add_argument("--json", type=Path, default=None, metavar="OUT")
    _add_replay_options(la)
    la.set_defaults(func=run_latency)


def run_latency(args: argparse.Namespace) -> int:
    import tempfile

    from ..bag.make import SyntheticOptions, make_bags
    from ..bag.replay_eval import replay_eval

    _check_json(args.json)
    with tempfile.TemporaryDirectory(prefix="gs_tracker_latency_") as tmp:
        bag = args.bag or Path(tmp) / "synthetic_latency"
        if not bag.exists():
            print(f"making {bag} ({args.width}x{args.height}, {args.frames} frames, {args.grid}x{args.grid} grid)",
                  file=sys.stderr)
            make_bags("synthetic", bag, fps=args.fps,
                      synthetic=SyntheticOptions(width=args.width, height=args.height, frames=args.frames,
                                                 grid=args.grid))
        result = replay_eval([bag], _replay_options(args))
    o = result["overall"]
    result["latency_setup"] = {"width": args.width, "height": args.height, "fps": args.fps, "frames": args.frames,
                               "points": args.grid * args.grid}
    print(f"end-to-end latency at {args.fps:g} Hz, {args.width}x{args.height}, {args.grid * args.grid} points "
          f"({result['method']}, {result['replay']['mode']}): p50 {o['latency_ms_p50']:.1f} ms, "
          f"p95 {o['latency_ms_p95']:.1f} ms, dropped {o['dropped_frames']}/{o['frames']} frames; "
          f"delta_avg {100 * o['delta_avg']:.1f}, AJ {100 * o['AJ']:.1f}")
    _write_json(args.json, result)
    return 0


# ------------------------------------------------------------------------------------ score
def _register_score(bag_sub) -> None:
    s = bag_sub.add_parser("score", help="score recorded tracks (replay-eval --record) against a bag's ground truth")
    s.add_argument("gt_bag", type=Path, help="the bag with the ground truth (made by `bag make`)")
    s.add_argument("record", type=Path, help="the bag recorded by `bag replay-eval --record`")
    s.add_argument("--json", type=Path, default=None, metavar="OUT")
    s.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    from ..bag.score import score_recording

    _check_json(args.json)
    result = score_recording([args.gt_bag], [args.record])
    result["replay"] = {"mode": "recorded", "rate": float("nan")}
    _print_table(result)
    _write_json(args.json, result)
    return 0
