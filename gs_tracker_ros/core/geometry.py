"""Image-plane conventions used everywhere: pixel centres and what "inside the image" means.

Pixel (i, j) has its centre at x = j, y = i (x right, y down), so a W x H image covers
x in [-0.5, W - 0.5] and y in [-0.5, H - 0.5]; both edges count as inside.
"""

from __future__ import annotations

import numpy as np


def inside_image(xy: np.ndarray, shape_hw: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """``(N,) bool``: points ``xy (N, 2)`` px lie inside an image of ``shape_hw`` = (H, W).

    ``margin`` px shrinks (positive) or grows (negative) the accepted area on every side.
    NaN points are outside.
    """
    h, w = shape_hw
    x, y = np.asarray(xy)[:, 0], np.asarray(xy)[:, 1]
    lo = -0.5 + margin
    with np.errstate(invalid="ignore"):
        return (x >= lo) & (x <= w - 0.5 - margin) & (y >= lo) & (y <= h - 0.5 - margin)


def clip_to_image(xy: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """A copy of ``xy (N, 2)`` px clamped to the image area of :func:`inside_image`."""
    h, w = shape_hw
    out = np.array(xy, dtype=np.float64, copy=True)
    out[:, 0] = np.clip(out[:, 0], -0.5, w - 0.5)
    out[:, 1] = np.clip(out[:, 1], -0.5, h - 0.5)
    return out
