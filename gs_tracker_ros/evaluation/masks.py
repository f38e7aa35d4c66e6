"""Mask-stay: do points that start on an object stay on it while they are reported visible?

Real object masks (``../shared/data/davis_masks``, one PNG per frame, nonzero = any annotated
object) carry no point labels, but they answer one question every tracker must: a point seeded on
the object must not slide onto the background while it is still called visible. Per clip:

* seeds: up to ``max_points`` points of a ``step_px`` grid on frame 0 that lie inside the
  object mask eroded by ``erode_px`` (so no seed starts on the object's edge), picked evenly
  along the grid's row-major order;
* every later frame t and seed n is one pair; the pair *stays* when the tracker reports the point
  visible on t AND it lies inside frame t's mask dilated by ``dilate_px`` (a point on the edge of
  a moving limb is not punished for the mask's own inaccuracy).

Reported (fractions of all pairs unless said otherwise):

* ``mask_stay``: pairs that stay. Marking a point occluded never scores, so a tracker cannot win
  by giving up; objects can be truly occluded, so compare methods side by side, never against 1.
* ``visible_rate``: pairs reported visible;
* ``on_object``: among the pairs reported visible, those inside the dilated mask.

The unit a paired bootstrap resamples is the seed (its pairs are correlated), see
:func:`~gs_tracker_ros.evaluation.significance.paired_mask_difference`. Both passes over a clip go
through :func:`~gs_tracker_ros.evaluation.runner.run_tracker_on_sequence`, the one online runner.
Positions in px of the frame (x right, y down).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.frames import list_images, open_frames
from ..core.types import PointTracker
from .runner import run_tracker_on_sequence

MASK_FRACTION_KEYS: tuple[str, ...] = ("mask_stay", "visible_rate", "on_object")


@dataclass(frozen=True)
class MaskClip:
    """One clip with object masks: ``frames (T, H, W, 3) uint8`` RGB, ``masks (T, H, W) bool``."""

    name: str
    frames: np.ndarray
    masks: np.ndarray


@dataclass(frozen=True)
class MaskProtocol:
    """Seeding and scoring of mask-stay (module doc); distances in px.

    Attributes:
        erode_px: seeds lie inside the frame-0 mask eroded by this many px.
        dilate_px: a visible point counts as on the object inside the mask dilated by this.
        step_px: spacing of the candidate seed grid.
        max_points: at most this many seeds per clip (picked evenly among the candidates).
    """

    erode_px: int = 12
    dilate_px: int = 6
    step_px: int = 8
    max_points: int = 64

    def validate(self) -> "MaskProtocol":
        for name, value, low in (("erode_px", self.erode_px, 0), ("dilate_px", self.dilate_px, 0),
                                 ("step_px", self.step_px, 1), ("max_points", self.max_points, 1)):
            if not (isinstance(value, (int, np.integer)) and low <= value <= 10_000):
                raise InputError(f"mask protocol {name} must be an integer in [{low}, 10000], got {value!r}")
        return self


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def read_mask(path: Path) -> np.ndarray:
    """A mask PNG as ``(H, W) bool`` (nonzero = object); :class:`InputError` naming the file."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"cannot decode mask file {path} (corrupt or not an image)")
    return (img.max(axis=2) if img.ndim == 3 else img) > 0


def default_frames_dir(masks_dir: Path) -> Path:
    """Where a masks folder's frames are by default: the sibling ``davis_unlabeled`` folder (the
    layout of ``../shared/data``)."""
    return Path(masks_dir).resolve().parent / "davis_unlabeled"


def load_mask_dataset(masks_dir: Path, frames_dir: Path | None = None, max_frames: int | None = None) -> list[MaskClip]:
    """Every sub-folder of mask PNGs in ``masks_dir`` with the frames of the same name in
    ``frames_dir`` (default :func:`default_frames_dir`), first ``max_frames`` frames each, in name
    order. Masks and frames pair by position in natural order; their counts and sizes must agree."""
    masks_dir = Path(masks_dir)
    frames_dir = default_frames_dir(masks_dir) if frames_dir is None else Path(frames_dir)
    if not masks_dir.is_dir():
        raise InputError(f"mask dataset folder does not exist: {masks_dir}")
    if not frames_dir.is_dir():
        raise InputError(f"frames folder for the masks does not exist: {frames_dir} (give it with --mask-frames)")
    clips = []
    for folder in sorted(p for p in masks_dir.iterdir() if p.is_dir()):
        mask_files = list_images(folder)
        if not mask_files:
            continue
        source = frames_dir / folder.name
        if not source.is_dir():
            raise InputError(f"no frames for the masks of {folder.name}: {source} does not exist")
        frames = np.stack(list(open_frames(source, max_frames=max_frames)))
        if len(mask_files) < len(frames):
            raise InputError(f"{folder.name}: {len(frames)} frames but only {len(mask_files)} masks in {folder}")
        masks = np.stack([read_mask(p) for p in mask_files[: len(frames)]])
        if masks.shape[1:] != frames.shape[1:3]:
            raise InputError(f"{folder.name}: masks are {masks.shape[2]}x{masks.shape[1]} px but frames "
                             f"{frames.shape[2]}x{frames.shape[1]}")
        if len(frames) >= 2:
            clips.append(MaskClip(folder.name, frames, masks))
    if not clips:
        raise InputError(f"no mask folders with at least 2 frames in {masks_dir}")
    return clips


def seed_points(mask: np.ndarray, protocol: MaskProtocol) -> np.ndarray:
    """``(P, 2)`` px seeds on ``mask (H, W) bool`` (module doc); empty when the eroded mask is."""
    inner = cv2.erode(mask.astype(np.uint8), _disc(protocol.erode_px)) > 0 if protocol.erode_px else mask
    h, w = mask.shape
    half = protocol.step_px // 2
    ys, xs = np.meshgrid(np.arange(half, h, protocol.step_px), np.arange(half, w, protocol.step_px), indexing="ij")
    keep = inner[ys, xs]
    cand = np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32)
    if len(cand) > protocol.max_points:
        cand = cand[np.linspace(0, len(cand) - 1, protocol.max_points).round().astype(np.int64)]
    return cand


def mask_pairs(xy: np.ndarray, visible: np.ndarray, masks: np.ndarray, dilate_px: int) -> dict[str, np.ndarray]:
    """Per seed, over frames 1..T-1: ``pairs``, ``visible`` and ``stay`` counts ``(P,) int64``
    (``stay`` = visible and inside the dilated mask), from the run's ``xy (P, T, 2)`` px and
    ``visible (P, T)``."""
    p, t = visible.shape
    on = np.zeros((p, t), bool)
    for f in range(1, t):
        grown = cv2.dilate(masks[f].astype(np.uint8), _disc(dilate_px)) > 0 if dilate_px else masks[f]
        pos = xy[:, f]
        ok = np.all(np.isfinite(pos), axis=1)
        ix = np.rint(np.nan_to_num(pos[:, 0])).astype(np.int64)
        iy = np.rint(np.nan_to_num(pos[:, 1])).astype(np.int64)
        ok &= (ix >= 0) & (ix < grown.shape[1]) & (iy >= 0) & (iy < grown.shape[0])
        on[ok, f] = grown[iy[ok], ix[ok]]
    vis = np.asarray(visible, bool)[:, 1:]
    return {"pairs": np.full(p, t - 1, np.int64), "visible": vis.sum(axis=1).astype(np.int64),
            "stay": (vis & on[:, 1:]).sum(axis=1).astype(np.int64)}


def mask_fractions(pairs, visible, stay) -> dict[str, Any]:
    """The fractions of the module doc from summed counts (scalars or arrays of resampled sums;
    NaN where a denominator is 0)."""
    pairs, visible, stay = (np.asarray(v, np.float64) for v in (pairs, visible, stay))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"mask_stay": np.where(pairs > 0, stay / pairs, np.nan),
                "visible_rate": np.where(pairs > 0, visible / pairs, np.nan),
                "on_object": np.where(visible > 0, stay / visible, np.nan)}


def mask_scores(counts: dict[str, np.ndarray]) -> dict[str, float]:
    """:func:`mask_fractions` of per-seed counts (:func:`mask_pairs`), summed, as floats."""
    out = mask_fractions(*(np.sum(counts[k]) for k in ("pairs", "visible", "stay")))
    return {k: float(v) for k, v in out.items()}


def evaluate_masks(tracker_factory: Callable[[], PointTracker], clips: Sequence[MaskClip],
                   protocol: MaskProtocol | None = None, progress: bool = True) -> dict[str, Any]:
    """Mask-stay per clip and pooled over every clip's pairs; JSON-ready.

    Returns ``{"method", "overall": {...}, "sequences": {name: {...}}}`` with the fractions of
    :data:`MASK_FRACTION_KEYS`, ``points``, ``ms_per_frame`` (median step time) and, per clip, the
    per-seed counts ``point_counts`` that the paired bootstrap resamples."""
    protocol = (protocol or MaskProtocol()).validate()
    if not clips:
        raise InputError("no clips to evaluate")
    method = None
    per_clip: dict[str, dict[str, Any]] = {}
    pooled: list[dict[str, np.ndarray]] = []
    all_ms = []
    for clip in clips:
        tracker = tracker_factory()
        method = method or str(getattr(tracker, "name", type(tracker).__name__))
        seeds = seed_points(clip.masks[0], protocol)
        if len(seeds) == 0:
            raise InputError(f"{clip.name}: no seed inside the frame-0 mask eroded by {protocol.erode_px} px")
        run = run_tracker_on_sequence(tracker, clip.frames, {0: seeds})
        counts = mask_pairs(run.xy, run.visible, clip.masks, protocol.dilate_px)
        per_clip[clip.name] = {**mask_scores(counts), "points": int(len(seeds)),
                               "ms_per_frame": run.ms_per_frame,
                               "point_counts": {k: v.tolist() for k, v in counts.items()}}
        pooled.append(counts)
        all_ms.append(run.step_ms)
        if progress:
            s = per_clip[clip.name]
            print(f"[{method}] {clip.name}: " + " ".join(f"{k}={100 * s[k]:.1f}" for k in MASK_FRACTION_KEYS),
                  file=sys.stderr, flush=True)
    total = {k: np.concatenate([c[k] for c in pooled]) for k in pooled[0]}
    overall = {**mask_scores(total), "points": int(sum(len(c["pairs"]) for c in pooled)),
               "ms_per_frame": float(np.median(np.concatenate(all_ms)))}
    if progress:
        print(f"[{method}] overall: " + " ".join(f"{k}={100 * overall[k]:.1f}" for k in MASK_FRACTION_KEYS),
              file=sys.stderr, flush=True)
    return {"method": method, "overall": overall, "sequences": per_clip}

