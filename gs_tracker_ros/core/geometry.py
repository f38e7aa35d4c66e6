"""Image-plane conventions used everywhere: pixel centres and what "inside the image" means.

Pixel (i, j) has its centre at x = j, y = i (x right, y down), so a W x H image covers
x in [-0.5, W - 0.5] and y in [-0.5, H - 0.5]; both edges count as inside.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


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


def validate_query_points(xy: np.ndarray, shape_hw: tuple[int, int] | None) -> np.ndarray:
    """Check query points ``(N, 2)`` px: finite and inside the image. Raises ``InputError``."""
    arr = np.asarray(xy, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"query points must have shape (N, 2) as (x, y) pixels, got {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"query point(s) {np.flatnonzero(bad)[:10].tolist()} are NaN or infinite")
    if shape_hw is not None:
        h, w = shape_hw
        out = ~inside_image(arr, shape_hw)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise InputError(
                f"{int(out.sum())} query point(s) outside the {w}x{h} image, e.g. #{i} at "
                f"({arr[i, 0]:.1f}, {arr[i, 1]:.1f}); valid x in [-0.5, {w - 0.5}], y in [-0.5, {h - 0.5}]"
            )
    return arr


def grid_points(width: int, height: int, n: int, margin: float = 0.05) -> np.ndarray:
    """``(n*n, 2) float64`` px: an ``n x n`` grid over a ``width x height`` image, row by row
    (x fastest); columns evenly spaced from ``margin * (W - 1)`` to ``(1 - margin) * (W - 1)``,
    rows likewise (``margin`` = the fraction of each side left free). ``n = 0``: no points."""
    if n <= 0:
        return np.zeros((0, 2))
    xs = np.linspace(margin * (width - 1), (1 - margin) * (width - 1), n)
    ys = np.linspace(margin * (height - 1), (1 - margin) * (height - 1), n)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def first_grid_points(width: int, height: int, count: int, margin: float = 0.05) -> np.ndarray:
    """``(count, 2) float64`` px: the first ``count`` points of the smallest square
    :func:`grid_points` grid that holds that many (all of it when ``count`` is a square)."""
    return grid_points(width, height, int(np.ceil(np.sqrt(count))), margin)[:count]
