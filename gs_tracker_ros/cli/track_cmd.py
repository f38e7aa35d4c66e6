"""``gs-tracker track``: track points through a video or a folder of frames."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.frames import open_frames
from ..core.output import AtomicOutput, check_output
from ..core.geometry import grid_points
from ..core.seeding import GridSeeder
from ..core.types import TrackStatus
from ..evaluation.runner import run_tracker_on_sequence
from ..methods import make_tracker
from .common import add_method_options, load_config

MAX_GRID = 200
MAX_QUERY_FRAME = 2**31 - 1  # a frame index the tracker's int32 / int64 arithmetic holds exactly
VIDEO_SUFFIXES = (".mp4", ".avi")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track points through a video or a folder of images",
                       description="Track query points online through INPUT and save the tracks.")
    p.add_argument("input", type=Path, help="video file or folder of images")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--grid", type=int, metavar="N",
                   help=f"track an N x N grid of points placed on frame 0 (N in [1, {MAX_GRID}], and N x N at "
                        "most max_tracks: 4096 by default, so N <= 64; raise it with --set max_tracks=...)")
    q.add_argument("--queries", type=Path, metavar="FILE",
                   help="query file: .npy or text/CSV rows 'x y' (frame 0) or 'frame x y' (pixels, x right, y down)")
    p.add_argument("--out", type=Path, required=True,
                   help="output .npz with tracks_xy, visible, status, variance, p_lost, ids (see README); a name "
                        "without a suffix gets .npz")
    p.add_argument("--overlay", type=Path, default=None,
                   help=f"also write an overlay video ({' or '.join(VIDEO_SUFFIXES)})")
    p.add_argument("--sheet", type=Path, default=None, help="also write a contact sheet of the overlay (.png, .jpg)")
    p.add_argument("--uncertainty", action="store_true",
                   help="draw each visible point's 2-sigma circle in the overlay / sheet (calibrated, so often wide)")
    p.add_argument("--reseed", type=float, default=None, metavar="F",
                   help="with --grid N: keep the grid dense as the node's reseed_when_below does: when fewer "
                        "than F x N^2 grid points are visible, the hidden ones are removed and free grid cells "
                        "get new points (new ids)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    add_method_options(p)
    p.set_defaults(func=run)


def check_grid(n: int, max_tracks: int) -> None:
    """Refuse a ``--grid N`` outside [1, MAX_GRID] or with more points than ``max_tracks``."""
    if not 1 <= n <= MAX_GRID:
        raise InputError(f"--grid must be in [1, {MAX_GRID}], got {n}")
    if n * n > max_tracks:
        raise InputError(f"--grid {n} places {n * n} points but max_tracks is {max_tracks}: use --grid "
                         f"{math.isqrt(max_tracks)} or less, or --set max_tracks={n * n}")


def grid_queries(n: int, width: int, height: int) -> np.ndarray:
    """``(n*n, 2)`` points on a regular grid inside the image (5 % of each side left free)."""
    return grid_points(width, height, n)


def reseeder(args: argparse.Namespace) -> GridSeeder | None:
    """The grid seeder of ``--grid N --reseed F`` (None without ``--reseed``)."""
    if args.reseed is None:
        return None
    if not args.grid:
        raise InputError("--reseed needs --grid N (it keeps that grid dense)")
    if not 0.0 <= args.reseed <= 1.0:
        raise InputError(f"--reseed must be a fraction in [0, 1], got {args.reseed:g}")
    return GridSeeder(args.grid, args.reseed)


def read_query_file(path: Path) -> dict[int, np.ndarray]:
    """Queries by frame from ``.npy`` or text rows ``x y`` / ``frame x y``."""
    if not path.is_file():
        raise InputError(f"query file not found: {path}")
    try:
        if path.suffix == ".npy":
            arr = np.load(path)
        else:
            text = path.read_text().replace(",", " ")
            rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            arr = np.array(rows, dtype=np.float64)
        arr = np.asarray(arr, np.float64)
    except (ValueError, TypeError, OSError, EOFError) as err:
        detail = (str(err).splitlines() or [type(err).__name__])[0]
        raise InputError(f"cannot read query file {path}: {detail} (it must hold numbers: rows 'x y' or "
                         "'frame x y')") from None
    if arr.ndim != 2 or arr.shape[1] not in (2, 3) or arr.shape[0] == 0:
        raise InputError(f"query file {path} must hold rows 'x y' or 'frame x y', got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InputError(f"query file {path}: row {bad + 1} is NaN or infinite")
    if arr.shape[1] == 2:
        arr = np.concatenate([np.zeros((len(arr), 1)), arr], axis=1)
    frames = arr[:, 0]
    wrong = (frames < 0) | (frames != np.round(frames)) | (frames > MAX_QUERY_FRAME)
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise InputError(f"query file {path}: row {row + 1} is on frame {frames[row]:g}: a frame must be an "
                         f"integer in [0, {MAX_QUERY_FRAME}]")
    out: dict[int, np.ndarray] = {}
    for f in np.unique(frames).astype(int):
        out[int(f)] = arr[frames == f, 1:].astype(np.float32)
    return out


def check_queries_in_image(queries: dict[int, np.ndarray], width: int, height: int) -> None:
    for f, q in queries.items():
        out = (q[:, 0] < -0.5) | (q[:, 0] > width - 0.5) | (q[:, 1] < -0.5) | (q[:, 1] > height - 0.5)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise InputError(f"{int(out.sum())} query point(s) on frame {f} lie outside the {width}x{height} "
                             f"image, e.g. ({q[i, 0]:.1f}, {q[i, 1]:.1f})")


def check_query_frames(queries: dict[int, np.ndarray], num_frames: int | None, name: str) -> None:
    """Refuse queries on frames the clip does not have (when its length is known), before tracking."""
    if num_frames is None:
        return
    beyond = sorted(f for f in queries if f >= num_frames)
    if beyond:
        raise InputError(f"{sum(len(queries[f]) for f in beyond)} query point(s) on frame {beyond[0]}"
                         + (f" (and {len(beyond) - 1} later frame(s))" if len(beyond) > 1 else "")
                         + f", but {name} has {num_frames} frames (0 to {num_frames - 1})")


def output_paths(args: argparse.Namespace) -> None:
    """Settle and check every output before any tracking: ``--out`` gets ``.npz`` when it has no
    suffix and must not have another (a frame's name would otherwise become ``00000.png.npz``
    beside the frames), ``--overlay`` / ``--sheet`` need a suffix that can be written; each
    folder is created and checked for writing."""
    if args.out.suffix == "":
        args.out = args.out.with_name(args.out.name + ".npz")
    check_output(args.out, "--out")
    if args.out.suffix.lower() != ".npz":
        raise InputError(f"--out {args.out}: the tracks are written as .npz; give a name ending in .npz")
    if args.overlay is not None:
        check_output(args.overlay, "--overlay")
        if args.overlay.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"--overlay {args.overlay}: give a video name ending in {' or '.join(VIDEO_SUFFIXES)}")
    if args.sheet is not None:
        import cv2

        check_output(args.sheet, "--sheet")
        if not cv2.haveImageWriter(str(args.sheet)):
            raise InputError(f"--sheet {args.sheet}: give an image name ending in .png or .jpg")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    if args.grid is not None:
        check_grid(args.grid, config.config.max_tracks)
    output_paths(args)
    frames = open_frames(args.input, max_frames=args.max_frames)
    width, height = frames.size
    seeder = reseeder(args)
    if seeder is not None:
        queries = {}  # the seeder places the grid on frame 0 and keeps it dense
    else:
        # --grid 0 is an invalid grid, not "no grid": argparse requires one of --grid / --queries
        queries = ({0: grid_queries(args.grid, width, height)} if args.grid is not None
                   else read_query_file(args.queries))
    check_queries_in_image(queries, width, height)
    check_query_frames(queries, frames.num_frames, frames.name)
    tracker = make_tracker(args.method, config)

    def reseed_step(t: int, state):
        result = seeder.reseed(tracker, state, width, height, config.config.max_tracks)
        return result.added_ids, result.added_xy

    on_step = reseed_step if seeder is not None else None
    total = frames.num_frames

    def progress(t: int) -> None:
        if (t + 1) % 25 == 0 or (total and t + 1 == total):
            print(f"\r  frame {t + 1}/{total or '?'}", end="", file=sys.stderr, flush=True)

    what = (f"a {args.grid}x{args.grid} grid re-seeded below {args.reseed:g} visible" if seeder is not None
            else f"{sum(len(q) for q in queries.values())} points")
    print(f"tracking {what} through {frames.name} ({width}x{height}) with {tracker.name}", file=sys.stderr)
    run_ = run_tracker_on_sequence(tracker, frames, queries, progress=progress, on_step=on_step)
    print(file=sys.stderr)
    with AtomicOutput(args.out) as tmp:
        np.savez_compressed(tmp, tracks_xy=run_.xy, visible=run_.visible, status=run_.status,
                            status_names=np.array([s.name.lower() for s in TrackStatus]), variance=run_.variance,
                            p_lost=run_.p_lost, ids=run_.ids, query_frame=run_.query_frame, query_xy=run_.query_xy,
                            step_ms=run_.step_ms, method=np.array(run_.method), image_wh=np.array([width, height]))
    last = run_.status[:, -1] if run_.status.size else np.zeros(0, np.uint8)
    counts = ", ".join(f"{int((last == s).sum())} {s.name.lower().replace('_', ' ')}"
                       for s in (TrackStatus.VISIBLE, TrackStatus.OCCLUDED, TrackStatus.OUT_OF_VIEW))
    fps = 1000.0 / run_.ms_per_frame if run_.ms_per_frame > 0 else float("inf")
    print(f"{run_.method}: {len(run_.ids)} tracks x {run_.num_frames} frames; last frame: {counts}; "
          f"{run_.ms_per_frame:.1f} ms/frame median ({fps:.0f} fps); tracks -> {args.out}")
    if args.overlay is not None or args.sheet is not None:
        from ..viz.overlay import OverlayStyle
        from ..viz.run_overlay import write_run_overlay

        path = write_run_overlay(frames, run_.ids, run_.xy, run_.visible, run_.variance, args.overlay,
                                 fps=frames.fps or 25.0, title=run_.method, sheet_path=args.sheet,
                                 status=run_.status, style=OverlayStyle(show_uncertainty=args.uncertainty),
                                 p_lost=run_.p_lost)
        if path is not None:
            print(f"overlay -> {path}")
        if args.sheet is not None:
            print(f"contact sheet -> {args.sheet}")
    return 0
