"""Layer textures cut from real video frames, so that generated scenes look like real footage.

A :class:`RealTexturePool` lists the frames of a folder of sequences (``<root>/<seq>/*.jpg``, or
one frame folder), decodes a few frames per sequence on first use (kept in memory at a bounded
size) and returns random crops as float32 textures. Textures only colour the layers: trajectories,
coverage and occlusion of a scene come from the layers' affines and masks, so the ground truth is
as exact with real crops as with procedural textures.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.paths import resolve_path

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class RealTexturePool:
    """Random crops of real frames as ``(h, w, 3) float32`` textures in 0..255 (RGB).

    Args:
        folder: a root of frame folders or one frame folder (relative paths: see
            :func:`~gs_tracker_ros.paths.resolve_path`).
        exclude: sequence (sub-folder) names left out, e.g. held-out evaluation sequences.
        frames_per_sequence: evenly spaced frames used from each sequence.
        max_side: decoded frames are downscaled so that their long side is at most this (px).
    """

    def __init__(self, folder: str | Path, exclude: tuple[str, ...] | list[str] = (), frames_per_sequence: int = 6,
                 max_side: int = 480) -> None:
        root = resolve_path(folder)
        if not root.is_dir():
            raise InputError(f"real-texture folder does not exist: {root}")
        seqs = [root] if _frames(root) else sorted(d for d in root.iterdir() if d.is_dir() and _frames(d))
        seqs = [d for d in seqs if d.name not in set(exclude)]
        self.files: list[Path] = []
        for d in seqs:
            files = _frames(d)
            pick = np.linspace(0, len(files) - 1, min(frames_per_sequence, len(files))).round().astype(int)
            self.files += [files[i] for i in sorted(set(pick.tolist()))]
        if not self.files:
            raise InputError(f"no image frames under {root}" + (f" (excluding {sorted(exclude)})" if exclude else ""))
        self.root, self.max_side = root, int(max_side)
        self._decoded: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.files)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as ``(H, W, 3) uint8`` RGB, long side at most ``max_side`` (decoded once)."""
        if i not in self._decoded:
            bgr = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"cannot read image {self.files[i]}")
            k = self.max_side / max(bgr.shape[:2])
            if k < 1:
                bgr = cv2.resize(bgr, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            self._decoded[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return self._decoded[i]

    def crop(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """A random crop of a random frame, resized to ``h x w``: ``(h, w, 3) float32`` in 0..255.

        The crop covers 40-100 % of the largest crop with the texture's aspect ratio (so it is
        magnified by at most 2.5x), is flipped left-right half the time and lightly smoothed
        (sigma 0.7 px, as the procedural textures) so that bilinear resampling stays accurate.
        """
        img = self.frame(int(rng.integers(len(self.files))))
        fh, fw = img.shape[:2]
        ch = min(fh, fw * h / w) * rng.uniform(0.4, 1.0)
        cw = ch * w / h
        ch, cw = max(2, min(fh, int(round(ch)))), max(2, min(fw, int(round(cw))))
        y0, x0 = int(rng.integers(0, fh - ch + 1)), int(rng.integers(0, fw - cw + 1))
        patch = img[y0 : y0 + ch, x0 : x0 + cw]
        interp = cv2.INTER_AREA if cw > w else cv2.INTER_LINEAR
        tex = cv2.resize(patch, (w, h), interpolation=interp).astype(np.float32)
        if rng.random() < 0.5:
            tex = tex[:, ::-1]
        return cv2.GaussianBlur(np.ascontiguousarray(tex), (0, 0), 0.7)


def _frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXT)


@lru_cache(maxsize=4)
def texture_pool(folder: str, exclude: tuple[str, ...] = ()) -> RealTexturePool:
    """One shared :class:`RealTexturePool` per (folder, exclude): scenes reuse its decoded frames."""
    return RealTexturePool(folder, exclude)
