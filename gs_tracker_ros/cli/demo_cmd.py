"""``gs-tracker demo``: the live ROS node end to end on the built-in generated scene.

bag (made under OUT if missing) -> ``gs_tracker_node`` over DDS -> recorded tracks -> accuracy vs
the scene's exact ground truth, latency, drops; plus an overlay video and a contact sheet. Safe to
run again: the bag is reused, every other output is rewritten.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.output import check_output, write_json

DEMO_FPS = 30.0
DEMO_POINTS = 32


def register(sub: argparse._SubParsersAction) -> None:
    from ..methods import method_names

    p = sub.add_parser("demo", help="run the ROS node end to end on the built-in scene (bag -> node -> scores, video)",
                       description="Make the generated demo scene into a bag (once), play it to the live "
                                   "tracker node over DDS at 30 fps, record the node's tracks, score them "
                                   "against the exact ground truth and write an overlay video and a "
                                   "contact sheet.")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    p.add_argument("--method", default=None, choices=method_names(), help="the node's tracking method (default: "
                   "the node's default)")
    p.add_argument("--points", type=int, default=DEMO_POINTS, help=f"query points on frame 0 (default {DEMO_POINTS})")
    p.add_argument("--frames", type=int, default=None, help="shorter scene: this many frames (default: all 120)")
    p.add_argument("--mode", choices=("timed", "lockstep"), default="timed",
                   help="timed: 30 fps like a camera (default); lockstep: each image waits for its tracks")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: the environment's)")
    p.add_argument("--no-video", action="store_true", help="skip the overlay video (the contact sheet is still written)")
    p.set_defaults(func=run)


def _demo_bag(out: Path, frames: int | None, points: int) -> Path:
    """The demo bag under ``out`` (made when missing or unreadable)."""
    from ..bag.groundtruth import load_bag_sequence
    from ..bag.io import BagError, remove_bag
    from ..bag.make import SyntheticOptions, make_bags

    name = f"demo_scene_{frames or 'all'}f_{points}p"
    bag = out / name
    if bag.exists():
        try:
            load_bag_sequence(bag)
            return bag
        except BagError as err:
            print(f"demo: {bag} is unusable ({err}); making it again", file=sys.stderr)
            remove_bag(bag)
    print(f"demo: making the demo bag {bag} (generated scene, exact ground truth)", file=sys.stderr)
    make_bags("synthetic", bag, fps=DEMO_FPS, synthetic=SyntheticOptions(frames=frames, points=points))
    return bag


def _render(rep, frames: list[np.ndarray], video: Path | None, sheet: Path, title: str, fps: float) -> Path | None:
    from ..bag.score import predictions
    from ..viz.run_overlay import write_run_overlay

    xy, vis, received, var, lost = predictions(rep, with_variance=True)
    ids = np.asarray(rep.gt.point_ids, np.int64)
    titles = [title + ("" if ok else " (frame dropped)") for ok in received]
    return write_run_overlay(frames, ids, xy, vis, var, video, fps=fps, title=titles, sheet_path=sheet, p_lost=lost)


def run(args: argparse.Namespace) -> int:
    from ..bag.groundtruth import load_bag_sequence
    from ..bag.replay_eval import ReplayOptions, run_replay

    if args.points < 1:
        raise InputError(f"--points must be >= 1, got {args.points}")
    if args.frames is not None and args.frames < 2:
        raise InputError(f"--frames must be >= 2, got {args.frames}")
    t0 = time.monotonic()
    out = args.out.expanduser()
    check_output(out / "demo_summary.json", "--out")  # creates the folder, writes a probe in it
    bag = _demo_bag(out, args.frames, args.points)
    record = out / "demo_tracks"
    opts = ReplayOptions(mode=args.mode, rate=1.0, method=args.method, domain_id=args.domain_id, record=record,
                         overwrite=True, log_dir=out / "demo_logs")
    result, replays = run_replay([bag], opts)
    rep = replays[0]
    o = result["overall"]
    gt = load_bag_sequence(bag, with_frames=True)
    frames = list(gt.seq.frames)
    title = f"{result['method']} (ROS node, live)"
    video = None if args.no_video else out / "demo_overlay.mp4"
    video_path = _render(rep, frames, video, out / "demo_contact_sheet.png", title, DEMO_FPS)
    summary = {
        "method": result["method"], "bag": str(bag), "recorded_tracks": str(record),
        "tracks": int(gt.seq.num_points), "frames": int(o["frames"]),
        "size": f"{gt.seq.image_hw[1]}x{gt.seq.image_hw[0]}", "input_fps": DEMO_FPS,
        "tracks_fps": float(rep.extra.get("tracks_fps", float("nan"))),
        "latency_ms_p50": o["latency_ms_p50"], "latency_ms_p95": o["latency_ms_p95"],
        "dropped_frames": o["dropped_frames"],
        "accuracy": {k: o[k] for k in ("delta_avg", "OA", "AJ", "delta_3px")},
        "overlay_video": str(video_path) if video_path else None,
        "contact_sheet": str(out / "demo_contact_sheet.png"),
        "mode": args.mode, "wall_s": time.monotonic() - t0,
    }
    write_json(out / "demo_summary.json", summary)

    def pct(v: float) -> str:
        return "nan" if math.isnan(v) else f"{100 * v:.1f}"

    acc = summary["accuracy"]
    print(f"gs-tracker demo: {summary['method']} in the ROS node on the generated scene "
          f"({summary['size']}, {summary['frames']} frames at {DEMO_FPS:g} fps, {args.mode})")
    print(f"  tracks:   {summary['tracks']} points, tracks at {summary['tracks_fps']:.1f} fps, "
          f"dropped {summary['dropped_frames']}/{summary['frames']} frames")
    print(f"  latency:  p50 {summary['latency_ms_p50']:.1f} ms, p95 {summary['latency_ms_p95']:.1f} ms "
          "(image publish -> tracks received)")
    print(f"  accuracy vs exact ground truth: delta_avg {pct(acc['delta_avg'])}, OA {pct(acc['OA'])}, "
          f"AJ {pct(acc['AJ'])}, delta_3px {pct(acc['delta_3px'])} (%)")
    print(f"  outputs:  {summary['overlay_video'] or '(no video)'}, {summary['contact_sheet']}, "
          f"{out / 'demo_summary.json'}, recorded tracks {record}")
    print(f"  done in {summary['wall_s']:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m gs_tracker_ros.cli.demo_cmd`` = ``gs-tracker demo``."""
    from .main import main as cli_main

    return cli_main(["demo", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
