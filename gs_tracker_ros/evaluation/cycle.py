"""Label-free accuracy on real video: forward-backward cycle consistency.

For each clip: a grid of points is placed on frame 0 and tracked forward to frame T-1; the
end positions are then placed as queries on the reversed clip (frame T-1 first) and tracked back
to frame 0. A perfect tracker returns every point to where it started. Per point::

    returned = visible at the end of the forward pass and at the end of the backward pass
    error    = |back-tracked position on frame 0 - grid position| px   (inf if not returned)

Reported (fractions of all grid points, so a point lost either way counts as a failure):
``within_2px``, ``within_4px``, ``within_8px``, ``median_error_px`` (over all points; inf when
more than half were lost) and ``tracked`` (fraction returned). A tracker that never moves would
return every point exactly, so read this beside the labelled scores, never alone.

Both passes go through :func:`~gs_tracker_ros.evaluation.runner.run_tracker_on_sequence`, the
one online runner used everywhere.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.frames import open_frames
from ..core.geometry import grid_points, inside_image
from ..core.types import PointTracker
from .runner import run_tracker_on_sequence

CYCLE_THRESHOLDS_PX: tuple[float, ...] = (2.0, 4.0, 8.0)


@dataclass(frozen=True)
class CycleClip:
    """One unlabelled clip: ``frames (T, H, W, 3) uint8`` RGB and its name."""

    name: str
    frames: np.ndarray


def load_cycle_dataset(directory: Path, max_frames: int = 48) -> list[CycleClip]:
    """Every sub-folder of images in ``directory`` (or ``directory`` itself if it holds images),
    first ``max_frames`` frames each, in name order. Raises :class:`InputError` if none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"cycle dataset folder does not exist: {directory}")
    folders = sorted(p for p in directory.iterdir() if p.is_dir())
    if not folders:
        folders = [directory]
    clips = []
    for folder in folders:
        try:
            source = open_frames(folder, max_frames=max_frames)
        except InputError:
            continue  # a sub-folder without images (e.g. masks next to frames/) is not a clip
        frames = np.stack(list(source))
        if len(frames) >= 2:
            clips.append(CycleClip(folder.name, frames))
    if not clips:
        raise InputError(f"no image folders with at least 2 frames in {directory}")
    return clips


def cycle_errors(tracker: PointTracker, frames: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """``(grid*grid,)`` px round-trip error of a ``grid x grid`` point grid (inf = lost), and the
    forward pass's ``step()`` times in ms."""
    t, h, w = frames.shape[:3]
    start = grid_points(w, h, grid)
    fwd = run_tracker_on_sequence(tracker, frames, {0: start})
    end_xy, end_vis = fwd.xy[:, -1], fwd.visible[:, -1] & inside_image(fwd.xy[:, -1], (h, w))
    err = np.full(len(start), np.inf)
    rows = np.flatnonzero(end_vis)
    if rows.size == 0:
        return err, fwd.step_ms
    back = run_tracker_on_sequence(tracker, frames[::-1], {0: end_xy[rows]})
    ok = back.visible[:, -1]
    dist = np.linalg.norm(back.xy[:, -1] - start[rows], axis=1)
    err[rows[ok]] = dist[ok]
    return err, fwd.step_ms


def cycle_successes(errors: np.ndarray) -> dict[str, np.ndarray]:
    """Per grid point, from its round-trip errors ``(N,)`` px (inf = lost), whether it counts for
    each fraction the cycle check reports: ``within_{k}px`` (returned within k px, one key per
    threshold) and ``tracked`` (returned at all). ``(N,) bool`` each, keys in reporting order."""
    errors = np.asarray(errors, np.float64)
    out = {f"within_{int(k)}px": errors < k for k in CYCLE_THRESHOLDS_PX}
    out["tracked"] = np.isfinite(errors)
    return out


CYCLE_FRACTION_KEYS: tuple[str, ...] = tuple(cycle_successes(np.zeros(0)))


def summarize_cycle(errors: np.ndarray) -> dict[str, float]:
    """The cycle scores of module doc from pooled per-point errors (px, inf = lost)."""
    errors = np.asarray(errors, np.float64)
    out = {key: float(np.mean(ok)) if ok.size else float("nan") for key, ok in cycle_successes(errors).items()}
    out["median_error_px"] = float(np.median(errors))
    out["points"] = int(errors.size)
    return out


def evaluate_cycle(tracker_factory: Callable[[], PointTracker], clips: Sequence[CycleClip], grid: int = 8,
                   progress: bool = True) -> dict[str, Any]:
    """Cycle scores per clip and pooled over every clip's points; JSON-ready.

    Returns ``{"method", "overall": {...}, "sequences": {name: {...}}}`` with the keys of
    :func:`summarize_cycle` plus ``ms_per_frame`` (median step time of the forward passes); each
    clip also lists its grid points' round-trip ``errors`` (px, inf = lost), which
    :func:`~gs_tracker_ros.evaluation.significance.paired_cycle_difference` resamples.
    """
    if not clips:
        raise InputError("no clips to evaluate")
    method = None
    per_clip: dict[str, dict[str, Any]] = {}
    pooled, all_ms = [], []
    for clip in clips:
        tracker = tracker_factory()
        method = method or str(getattr(tracker, "name", type(tracker).__name__))
        err, step_ms = cycle_errors(tracker, clip.frames, grid)
        per_clip[clip.name] = {**summarize_cycle(err), "ms_per_frame": float(np.median(step_ms)),
                               "errors": err.tolist()}  # per grid point, px (inf = lost): for resampling
        pooled.append(err)
        all_ms.append(step_ms)
        if progress:
            s = per_clip[clip.name]
            print(f"[{method}] {clip.name}: within_4px={100 * s['within_4px']:.1f} "
                  f"tracked={100 * s['tracked']:.1f} median={s['median_error_px']:.2f}px",
                  file=sys.stderr, flush=True)
    overall = {**summarize_cycle(np.concatenate(pooled)), "ms_per_frame": float(np.median(np.concatenate(all_ms)))}
    if progress:
        print(f"[{method}] overall: " + " ".join(f"{k}={100 * overall[k]:.1f}" for k in
                                                  ("within_2px", "within_4px", "within_8px", "tracked"))
              + f" median={overall['median_error_px']:.2f}px", file=sys.stderr, flush=True)
    return {"method": method, "overall": overall, "sequences": per_clip}
