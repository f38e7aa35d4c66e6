"""``gs-tracker bag make``: turn a video, a frames folder, a BADJA sequence (or dataset) or the
generated demo scene into a rosbag2 bag (sqlite3 or mcap).

Images are ``sensor_msgs/msg/Image`` ``rgb8`` on ``topic`` with header stamps
``start_time + t / fps`` (strictly increasing) and ``frame_id``; the log time of every message
equals its header stamp. Labelled inputs also get the ground truth described in
:mod:`gs_tracker_ros.bag.groundtruth`.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..core.errors import InputError
from ..core.frames import list_images, open_frames
from ..core.geometry import grid_points
from .groundtruth import GT_QUERIES_TOPIC, GT_TRACKS_TOPIC, IMAGE_TOPIC, gt_metadata_json, tracks_cdr
from .io import GT_METADATA_KEY, STORAGE_FORMATS, BagWriter, check_bag_output, rgb_to_image_cdr
from .typestore import IMAGE_TYPE, TRACKS_TYPE
from ..evaluation.synthetic_gt import scene_sequence
from ..synthetic import SceneConfig, make_scene
from ..evaluation.badja import TrackingSequence, load_badja_dataset, load_badja_sequence

DEFAULT_FPS = 30.0
MAX_FPS = 1e6  # stamps 1 us apart: far above any camera, and strictly increasing at ns resolution
DEFAULT_FRAME_ID = "camera"
# Default stamp of the first image: a fixed time, so that making a bag twice gives the same bag.
DEFAULT_START_TIME_S = 1_700_000_000.0
MAX_STAMP_S = 2**31 - 1  # builtin_interfaces/Time.sec is an int32
DEFAULT_POINTS = 256
# A ROS 2 topic name, absolute: tokens of letters, digits and underscores, not starting with a digit.
TOPIC_PATTERN = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass
class SyntheticOptions:
    """The generated scene (defaults: the project's demo scene, see SceneConfig) and its queries.

    ``grid`` > 0 places a grid x grid lattice of queries on frame 0 instead of ``points`` random
    ones away from layer edges (``seed`` picks them)."""

    width: int | None = None
    height: int | None = None
    frames: int | None = None
    points: int = DEFAULT_POINTS
    grid: int = 0
    seed: int = 0
    scene_seed: int = 0


def check_fps(fps: float, what: str = "--fps") -> float:
    """``fps`` if it is a frame rate the stamps can carry: finite, > 0 and at most :data:`MAX_FPS`."""
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise InputError(f"{what} must be a frame rate in (0, {MAX_FPS:.0f}] (stamps strictly increasing at "
                         f"nanosecond resolution), got {fps:.15g}")
    return float(fps)


def check_start_time(start_time_s: float, num_frames: int | None = None, fps: float = DEFAULT_FPS) -> float:
    """``start_time_s`` if it and the last frame's stamp fit builtin_interfaces/Time (seconds in
    [0, 2^31 - 1])."""
    if not (math.isfinite(start_time_s) and 0 <= start_time_s <= MAX_STAMP_S):
        raise InputError(f"--start-time must be in [0, {MAX_STAMP_S}] seconds since the epoch (a ROS stamp's "
                         f"int32 seconds), got {start_time_s:.15g}")
    if num_frames and start_time_s + (num_frames - 1) / fps >= MAX_STAMP_S:
        raise InputError(f"--start-time {start_time_s:.15g}: the stamp of frame {num_frames - 1} at {fps:g} fps "
                         f"would pass {MAX_STAMP_S} s (a ROS stamp's int32 seconds)")
    return float(start_time_s)


def check_topic(topic: str) -> str:
    """The absolute form of image topic ``topic`` (a leading ``/`` added) if it is a valid ROS 2
    name (tokens of letters, digits and ``_``, not starting with a digit, separated by ``/``)."""
    name = topic if topic.startswith("/") else "/" + topic
    if not TOPIC_PATTERN.fullmatch(name):
        raise InputError(f"--topic '{topic}' is not a valid ROS topic name (letters, digits and '_' in "
                         "'/'-separated tokens that do not start with a digit, e.g. /camera/image_raw)")
    return name


def _write_bag(out: Path, frames: Iterable[np.ndarray], num_frames: int | None, fps: float, storage: str,
               topic: str, frame_id: str, start_time_s: float, overwrite: bool,
               gt: dict | None = None, custom: dict[str, str] | None = None,
               progress: Callable[[str], None] | None = None) -> Path:
    """Write images (and ground truth ``gt``: tracks (N,T,2), visible (N,T), annotated (T,),
    ids (N,), query_frame (N,), query_xy (N,2)) to a new bag at ``out``."""
    topic = check_topic(topic)
    check_start_time(start_time_s, num_frames, check_fps(fps))
    period = 1e9 / fps
    start = int(round(start_time_s * 1e9))
    count = 0
    with BagWriter(out, storage=storage, overwrite=overwrite, custom_data=custom) as writer:
        writer.add_topic(topic, IMAGE_TYPE)
        if gt is not None:
            writer.add_topic(GT_TRACKS_TOPIC, TRACKS_TYPE)
            writer.add_topic(GT_QUERIES_TOPIC, TRACKS_TYPE)
        size = None
        for t, rgb in enumerate(frames):
            if size is None:
                size = rgb.shape
            elif rgb.shape != size:
                raise InputError(f"frame {t} is {rgb.shape[1]}x{rgb.shape[0]} but frame 0 is {size[1]}x{size[0]}")
            stamp = start + int(round(t * period))
            writer.write(topic, stamp, rgb_to_image_cdr(rgb, stamp, frame_id))
            if gt is not None:
                if gt["annotated"][t]:
                    writer.write(GT_TRACKS_TOPIC, stamp, tracks_cdr(stamp, frame_id, gt["ids"], gt["tracks"][:, t],
                                                                   gt["visible"][:, t]))
                rows = np.flatnonzero(gt["query_frame"] == t)
                if rows.size:
                    writer.write(GT_QUERIES_TOPIC, stamp, tracks_cdr(stamp, frame_id, gt["ids"][rows],
                                                                     gt["query_xy"][rows], np.ones(rows.size, bool)))
            count += 1
            if progress is not None and (count % 25 == 0 or count == num_frames):
                progress(f"  {out.name}: {count}/{num_frames or '?'} frames")
        if count == 0:
            raise InputError("the input yields no frames")
        if gt is not None and count != gt["tracks"].shape[1]:
            raise InputError(f"the input has {count} frames but its ground truth has {gt['tracks'].shape[1]}")
    return out


def _sequence_gt(seq) -> dict:
    return {"tracks": seq.tracks_xy, "visible": seq.visible, "annotated": seq.annotated,
            "ids": np.asarray(seq.joint_ids, np.int64), "query_frame": seq.query_frame, "query_xy": seq.query_xy}


def make_synthetic_sequence(opts: SyntheticOptions):
    """The generated scene and its :class:`TrackingSequence` (exact ground truth, all frames labelled)."""
    import dataclasses

    base = SceneConfig(seed=opts.scene_seed)
    changes = {k: v for k, v in (("width", opts.width), ("height", opts.height), ("num_frames", opts.frames))
               if v is not None}
    scene = make_scene(dataclasses.replace(base, **changes))
    if opts.grid:
        if not 1 <= opts.grid <= 200:
            raise InputError(f"--grid must be in [1, 200], got {opts.grid}")
        q = grid_points(scene.width, scene.height, opts.grid)
        qf = np.zeros(len(q), np.int64)
        tracks, visible = scene.track(q, qf)
        seq = TrackingSequence(
            name="synthetic", frames=open_frames(np.stack(list(scene.frames()))), tracks_xy=tracks.astype(np.float32),
            visible=visible, annotated=np.ones(scene.num_frames, bool), query_frame=qf,
            query_xy=q.astype(np.float32), mask_area=np.full(scene.num_frames, np.nan),
            image_hw=(scene.height, scene.width), joint_ids=np.arange(len(q), dtype=np.int64))
    else:
        if opts.points < 1:
            raise InputError(f"--points must be >= 1, got {opts.points}")
        seq = scene_sequence(scene, num_points=opts.points, seed=opts.seed)
    return scene, seq


def input_kind(source: str | Path) -> str:
    """``synthetic``, ``badja-dataset``, ``badja``, ``folder`` or ``video``."""
    if str(source) == "synthetic":
        return "synthetic"
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"input does not exist: {path} (expected a video, a frames folder, a BADJA sequence "
                         "or dataset directory, or the word 'synthetic')")
    if path.is_dir():
        if (path / "gt.npz").is_file():
            return "badja"
        if any(p.is_dir() and (p / "gt.npz").is_file() for p in path.iterdir()):
            return "badja-dataset"
        if (path / "frames").is_dir() and not list_images(path):
            raise InputError(f"{path} has a frames/ folder but no gt.npz: pass {path / 'frames'} to bag it "
                             "without ground truth")
        return "folder"
    return "video"


def make_bags(source: str | Path, out: str | Path, storage: str = "sqlite3", topic: str = IMAGE_TOPIC,
              fps: float | None = None, frame_id: str = DEFAULT_FRAME_ID,
              start_time_s: float = DEFAULT_START_TIME_S, overwrite: bool = False, max_frames: int | None = None,
              synthetic: SyntheticOptions | None = None, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Make bag(s) from ``source``; return their paths.

    A BADJA dataset directory (sub-directories with gt.npz) gives one bag per sequence,
    ``out/<sequence>``; every other input gives the single bag ``out``. ``fps`` None means the
    video's own frame rate (when known) or 30.
    """

    if storage not in STORAGE_FORMATS:
        raise InputError(f"unknown bag format '{storage}' (choose {' or '.join(STORAGE_FORMATS)})")
    if fps is not None:
        check_fps(fps)
    check_start_time(start_time_s)
    topic = check_topic(topic)
    if not frame_id:
        raise InputError("--frame-id must not be empty")
    out = Path(out).expanduser()
    kind = input_kind(source)
    if kind != "synthetic" and synthetic is not None and synthetic != SyntheticOptions():
        raise InputError("--width/--height/--frames/--points/--grid/--seed/--scene-seed only apply to the "
                         "'synthetic' input")
    common = dict(storage=storage, topic=topic, frame_id=frame_id, start_time_s=start_time_s,
                  overwrite=overwrite, progress=progress)
    rate = fps or DEFAULT_FPS

    if kind in ("badja", "badja-dataset"):
        seqs = [load_badja_sequence(source)] if kind == "badja" else load_badja_dataset(source)
        targets = [out] if kind == "badja" else [out / seq.name for seq in seqs]
        for target in targets:  # every bag checked before the first is written
            check_bag_output(target, overwrite)
        made = []
        for seq, target in zip(seqs, targets):
            if max_frames is not None and max_frames < seq.num_frames:
                seq = _truncate(seq, max_frames)
            custom = {GT_METADATA_KEY: gt_metadata_json("badja", seq.name, seq.image_hw, rate, topic, seq.mask_area)}
            made.append(_write_bag(target, seq.frames, seq.num_frames, rate, gt=_sequence_gt(seq), custom=custom,
                                   **common))
        return made
    check_bag_output(out, overwrite)
    if kind == "synthetic":
        opts = synthetic or SyntheticOptions()
        if max_frames is not None:
            opts = SyntheticOptions(**{**opts.__dict__, "frames": min(max_frames, opts.frames or max_frames)})
        scene, seq = make_synthetic_sequence(opts)
        custom = {GT_METADATA_KEY: gt_metadata_json("synthetic", "synthetic", seq.image_hw, rate, topic, None)}
        return [_write_bag(out, seq.frames, seq.num_frames, rate, gt=_sequence_gt(seq), custom=custom, **common)]
    frames = open_frames(source, max_frames=max_frames)
    rate = fps or frames.fps or DEFAULT_FPS
    if fps is None and not 0 < rate <= MAX_FPS:
        raise InputError(f"{source} says its frame rate is {rate:g} fps; pass --fps")
    return [_write_bag(out, frames, frames.num_frames, rate, **common)]


def _truncate(seq, t: int):
    """The first ``t`` frames of a sequence (queries after them dropped)."""
    from dataclasses import replace

    keep = seq.query_frame < t
    return replace(seq, frames=_FirstFrames(seq.frames, t),
                   tracks_xy=seq.tracks_xy[keep, :t], visible=seq.visible[keep, :t], annotated=seq.annotated[:t],
                   query_frame=seq.query_frame[keep], query_xy=seq.query_xy[keep], mask_area=seq.mask_area[:t],
                   joint_ids=seq.joint_ids[keep])


class _FirstFrames:
    def __init__(self, frames, t: int) -> None:
        self.frames, self.t = frames, t

    def __len__(self) -> int:
        return self.t

    def __iter__(self):
        for i, f in enumerate(self.frames):
            if i >= self.t:
                return
            yield f


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
