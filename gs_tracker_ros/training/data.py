"""Training clips from folders of frames and video files.

Sources are decoded once, downscaled (short side ``preload_short`` px) and kept in memory as
uint8; a :class:`ClipSampler` then draws random small clips: a random sequence, temporal stride,
start frame, square crop (scale jitter), resize to ``size x size``, optional horizontal flip and
time reversal. Optional pseudo-label trajectories come from OpenCV pyramidal Lucas-Kanade on a
grid of frame-1 points (chained frame to frame, forward-backward checked).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.geometry import grid_points, inside_image
from ..core.paths import resolve_path
from ..motion.config import LKConfig
from ..motion.lucas_kanade import lk_forward_backward, lk_params

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@dataclass
class Sequence:
    name: str
    frames: np.ndarray  # (T, h, w, 3) uint8 RGB


def _resize_short(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    if s >= 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot decode image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_frames_folder(folder: Path, short: int, max_frames: int | None = None) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT)
    if max_frames:
        files = files[:max_frames]
    return np.stack([_resize_short(_read_image(p), short) for p in files])


def load_video(path: Path, short: int, max_frames: int | None = None) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(_resize_short(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), short))
    finally:
        cap.release()
    if not frames:
        raise InputError(f"cannot read any frame from video {path}")
    return np.stack(frames)


def discover(paths: list[str | Path]) -> list[tuple[str, Path]]:
    """Expand dataset paths to ``(name, path)`` of frame folders and video files.

    A path may be a frame folder, a video file, or a root whose children are either. Relative
    paths are taken from the cwd if they exist there, else from the repository root
    (:func:`~gs_tracker_ros.paths.resolve_path`), so ``../shared/data/...`` works from anywhere.
    """
    found: list[tuple[str, Path]] = []
    for p in map(resolve_path, paths):
        if not p.exists():
            raise InputError(f"training data path does not exist: {p}")
        if p.is_file():
            if p.suffix.lower() not in VIDEO_EXT:
                raise InputError(f"not a video file: {p}")
            found.append((p.stem, p))
            continue
        children = sorted(p.iterdir())
        if any(c.suffix.lower() in IMAGE_EXT for c in children if c.is_file()):
            found.append((p.name, p))
            continue
        for c in children:
            if c.is_dir() and any(x.suffix.lower() in IMAGE_EXT for x in c.iterdir()):
                found.append((c.name, c))
            elif c.is_file() and c.suffix.lower() in VIDEO_EXT:
                found.append((c.stem, c))
    return found


def load_sequences(paths: list[str | Path], short: int = 128, include: list[str] | None = None,
                   exclude: list[str] | None = None, min_frames: int = 2,
                   max_frames: int | None = None) -> list[Sequence]:
    """Decode every discovered source (optionally only ``include`` / without ``exclude`` names)."""
    out = []
    for name, path in discover(paths):
        if include is not None and name not in include:
            continue
        if exclude and name in exclude:
            continue
        frames = load_video(path, short, max_frames) if path.is_file() else load_frames_folder(path, short, max_frames)
        if len(frames) >= min_frames:
            out.append(Sequence(name, frames))
    if not out:
        raise InputError(f"no usable sequences in {', '.join(map(str, paths))}")
    return out


def clip_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``(height, width)`` of a clip size given as a square side or ``(height, width)``."""
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def crop_box(h: int, w: int, out_hw: tuple[int, int], scale: float = 1.0) -> tuple[int, int]:
    """``(crop height, crop width)`` px: the largest crop of a ``h x w`` frame with the aspect ratio of
    ``out_hw``, times ``scale`` (so resizing it to ``out_hw`` scales x and y alike)."""
    oh, ow = out_hw
    ch = min(float(h), w * oh / ow) * scale
    cw = ch * ow / oh
    return max(int(round(ch)), min(h, 8)), max(min(int(round(cw)), w), min(w, 8))


class ClipSampler:
    """Random ``(T, H, W, 3)`` uint8 clips from in-memory sequences.

    Each clip is a random crop with the aspect ratio of ``size`` (a side, or ``(H, W)``), covering
    ``crop_scale`` of the largest such crop, resized to ``size``; random temporal stride up to
    ``max_stride``, horizontal flip and time reversal.
    """

    def __init__(self, seqs: list[Sequence], num_frames: int, size: int | tuple[int, int], max_stride: int = 2,
                 crop_scale: tuple[float, float] = (0.5, 1.0), flip: bool = True, reverse: bool = True,
                 seed: int = 0) -> None:
        self.seqs = [s for s in seqs if len(s.frames) >= num_frames]
        if not self.seqs:
            raise InputError(f"no sequence has {num_frames} frames")
        self.t, self.size = num_frames, clip_hw(size)
        self.max_stride, self.crop_scale = max(1, max_stride), crop_scale
        self.flip, self.reverse = flip, reverse
        self.rng = np.random.default_rng(seed)
        w = np.array([len(s.frames) for s in self.seqs], float)
        self.p = w / w.sum()

    def sample(self) -> np.ndarray:
        rng = self.rng
        seq = self.seqs[rng.choice(len(self.seqs), p=self.p)]
        n = len(seq.frames)
        stride = int(rng.integers(1, min(self.max_stride, (n - 1) // (self.t - 1)) + 1))
        start = int(rng.integers(0, n - (self.t - 1) * stride))
        frames = seq.frames[start : start + (self.t - 1) * stride + 1 : stride]
        h, w = frames.shape[1:3]
        ch, cw = crop_box(h, w, self.size, rng.uniform(*self.crop_scale))
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        out_h, out_w = self.size
        clip = np.stack([
            cv2.resize(f[y0 : y0 + ch, x0 : x0 + cw], (out_w, out_h), interpolation=cv2.INTER_AREA)
            for f in frames
        ])
        if self.flip and rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        if self.reverse and rng.random() < 0.5:
            clip = clip[::-1]
        return np.ascontiguousarray(clip)

    def batch(self, b: int) -> np.ndarray:
        return np.stack([self.sample() for _ in range(b)])


def center_clip(frames: np.ndarray, start: int, num_frames: int, stride: int,
                size: int | tuple[int, int]) -> np.ndarray:
    """Deterministic clip: the largest centred crop with the aspect ratio of ``size`` (a side, or
    ``(H, W)``), resized to ``size``."""
    sel = frames[start : start + (num_frames - 1) * stride + 1 : stride]
    h, w = sel.shape[1:3]
    out_h, out_w = clip_hw(size)
    ch, cw = crop_box(h, w, (out_h, out_w))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.stack([
        cv2.resize(f[y0 : y0 + ch, x0 : x0 + cw], (out_w, out_h), interpolation=cv2.INTER_AREA) for f in sel
    ])


# LK of the pseudo-labels: small window, few levels (64-px-scale training clips); OpenCV's
# minimum-eigenvalue threshold, as the shipped checkpoints were trained with
PSEUDO_LABEL_LK = LKConfig(window=9, levels=2, max_iterations=20, epsilon=0.03, min_eig_threshold=1.0e-4)


def lk_grid_tracks(clip: np.ndarray, grid: int = 8, fb_thresh: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-label trajectories for a clip: LK from a ``grid x grid`` lattice on frame 1.

    Returns ``tracks (T, P, 2)`` in package pixels (centre of the top-left pixel = 0) and
    ``valid (T, P)`` (False once a point fails the status or forward-backward check).
    """
    t, h, w = clip.shape[:3]
    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in clip]
    pts = grid_points(w, h, grid, margin=0.5 / grid).astype(np.float32)  # one point per grid cell
    tracks = np.zeros((t, len(pts), 2), np.float32)
    valid = np.zeros((t, len(pts)), bool)
    tracks[0], valid[0] = pts, True
    params = lk_params(PSEUDO_LABEL_LK)
    cur = pts
    for i in range(1, t):
        res = lk_forward_backward(gray[i - 1], gray[i], cur, params)
        ok = res.converged & (res.fb_error < fb_thresh) & inside_image(res.landing, (h, w), margin=0.5)
        valid[i] = valid[i - 1] & ok
        tracks[i] = cur = res.landing
    return tracks, valid


def patch_motion(clip: np.ndarray, patch: int) -> np.ndarray:
    """Per spatial patch motion magnitude ``(h/p * w/p,)``: mean absolute temporal difference."""
    x = clip.astype(np.float32).mean(-1)  # (T, H, W)
    diff = np.abs(np.diff(x, axis=0)).mean(0)  # (H, W)
    h, w = diff.shape
    return diff.reshape(h // patch, patch, w // patch, patch).mean((1, 3)).ravel()
