"""Loader for BADJA-format sequences (see ``shared/data/README.md``).

A sequence directory holds::

    frames/00000.jpg ...   RGB frames (854x480 for DAVIS)
    masks/00000.png ...    object mask per frame (nonzero = object)
    gt.npz                 tracks_xy (N,T,2) px, visible (N,T), annotated_frames (T,),
                           joint_ids (N,), image_hw (2,) = [H, W]

Queries follow the BADJA / TAP-Vid "first" protocol: joint n is queried on its first annotated
frame where it is visible, at its labelled position; joints never visible on an annotated frame
are dropped.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.frames import FrameSource, list_images, open_frames


@dataclass
class TrackingSequence:
    """One video with ground-truth point tracks, ready for scoring.

    Attributes:
        name: sequence name (its directory name).
        frames: lazy :class:`FrameSource` over the RGB frames (each iteration re-reads the files).
        tracks_xy: ``(N, T, 2) float32`` ground-truth positions in px of the native frame.
        visible: ``(N, T) bool`` ground-truth visibility; meaningful only where ``annotated``.
        annotated: ``(T,) bool`` frames that carry labels.
        query_frame: ``(N,) int64`` frame of each point's query.
        query_xy: ``(N, 2) float32`` query position in px (= ``tracks_xy[n, query_frame[n]]``).
        mask_area: ``(T,) float64`` object-mask area in px^2 per frame (NaN where no mask).
        image_hw: ``(H, W)`` native frame size in px.
        joint_ids: ``(N,) int64`` BADJA skeleton index of each kept point.
    """

    name: str
    frames: FrameSource | None
    tracks_xy: np.ndarray
    visible: np.ndarray
    annotated: np.ndarray
    query_frame: np.ndarray
    query_xy: np.ndarray
    mask_area: np.ndarray
    image_hw: tuple[int, int]
    joint_ids: np.ndarray

    @property
    def num_points(self) -> int:
        return int(self.tracks_xy.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.tracks_xy.shape[1])

    def queries_by_frame(self) -> dict[int, np.ndarray]:
        """``{frame: (M, 2) float32 xy}`` grouping the queries by frame (point order kept)."""
        out: dict[int, np.ndarray] = {}
        for f in np.unique(self.query_frame):
            out[int(f)] = self.query_xy[self.query_frame == f].astype(np.float32)
        return out


def first_visible_queries(visible: np.ndarray, annotated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(keep, query_frame)``: points with a visible annotated frame, and that frame.

    ``keep`` is ``(N,) bool``; ``query_frame`` is ``(K,) int64`` for the kept points.
    """
    labelled_visible = visible & annotated[None, :]
    keep = labelled_visible.any(axis=1)
    query_frame = np.argmax(labelled_visible[keep], axis=1).astype(np.int64)
    return keep, query_frame


def _mask_areas(mask_dir: Path, num_frames: int) -> np.ndarray:
    areas = np.full(num_frames, np.nan, np.float64)
    if not mask_dir.is_dir():
        return areas
    files = list_images(mask_dir)
    for t, path in enumerate(files[:num_frames]):
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise InputError(f"cannot read mask image {path}")
        nonzero = mask != 0 if mask.ndim == 2 else (mask != 0).any(axis=2)
        areas[t] = float(np.count_nonzero(nonzero))
    return areas


def load_badja_sequence(seq_dir: str | Path) -> TrackingSequence:
    """Load one BADJA-format sequence directory (``frames/``, ``masks/``, ``gt.npz``).

    Raises:
        InputError: the directory or ``gt.npz`` is missing, ``gt.npz`` lacks a field or has
            inconsistent shapes, or ``frames/`` holds fewer images than ``gt.npz`` has frames.
    """
    seq_dir = Path(seq_dir).expanduser()
    if not seq_dir.is_dir():
        raise InputError(f"BADJA sequence directory does not exist: {seq_dir}")
    gt_path = seq_dir / "gt.npz"
    if not gt_path.is_file():
        raise InputError(f"{seq_dir} is not a BADJA sequence: no gt.npz in it")
    try:
        gt = np.load(gt_path)
        tracks = np.asarray(gt["tracks_xy"], np.float32)
        visible = np.asarray(gt["visible"], bool)
        annotated = np.asarray(gt["annotated_frames"], bool)
        joint_ids = np.asarray(gt["joint_ids"], np.int64) if "joint_ids" in gt else np.arange(len(tracks))
        image_hw = tuple(int(v) for v in gt["image_hw"])
    except KeyError as err:
        raise InputError(f"{gt_path} lacks field {err}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # truncated / corrupt file
        raise InputError(f"cannot read {gt_path}: {err} (truncated or corrupt .npz)") from None
    n, t = visible.shape if visible.ndim == 2 else (-1, -1)
    if tracks.shape != (n, t, 2) or annotated.shape != (t,) or joint_ids.shape != (n,) or len(image_hw) != 2:
        raise InputError(
            f"{gt_path}: inconsistent shapes tracks_xy {tracks.shape}, visible {visible.shape}, "
            f"annotated_frames {annotated.shape}, joint_ids {joint_ids.shape}"
        )

    frames_dir = seq_dir / "frames"
    frames = open_frames(frames_dir, max_frames=t) if frames_dir.is_dir() else None
    if frames is not None:
        if len(frames) < t:
            raise InputError(f"{frames_dir} holds {len(frames)} images but gt.npz has {t} frames")
        if frames.size != (image_hw[1], image_hw[0]):
            raise InputError(
                f"{frames_dir}: frames are {frames.size[0]}x{frames.size[1]} but gt.npz says "
                f"{image_hw[1]}x{image_hw[0]}"
            )

    keep, query_frame = first_visible_queries(visible, annotated)
    tracks, visible, joint_ids = tracks[keep], visible[keep], joint_ids[keep]
    query_xy = tracks[np.arange(len(tracks)), query_frame].astype(np.float32)
    return TrackingSequence(
        name=seq_dir.name,
        frames=frames,
        tracks_xy=tracks,
        visible=visible,
        annotated=annotated,
        query_frame=query_frame,
        query_xy=query_xy,
        mask_area=_mask_areas(seq_dir / "masks", t),
        image_hw=(image_hw[0], image_hw[1]),
        joint_ids=joint_ids,
    )


def load_badja_dataset(root: str | Path) -> list[TrackingSequence]:
    """Load every sequence under ``root`` (sub-directories with ``gt.npz``, sorted by name),
    or ``root`` itself when it is a single sequence directory.

    Raises:
        InputError: ``root`` does not exist or contains no sequence with a ``gt.npz``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"BADJA dataset directory does not exist: {root}")
    if (root / "gt.npz").is_file():
        return [load_badja_sequence(root)]
    seq_dirs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "gt.npz").is_file())
    if not seq_dirs:
        raise InputError(f"no BADJA sequences in {root}: neither it nor a sub-directory has a gt.npz")
    return [load_badja_sequence(p) for p in seq_dirs]
