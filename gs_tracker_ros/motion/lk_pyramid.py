"""One frame's LK image pyramid, built once and shared by every chain and direction that uses it.

The layout is what OpenCV's ``calcOpticalFlowPyrLK`` builds inside every call (and what its
Python binding will not take precomputed): level 0 is the grey frame, each further level
``cv2.pyrDown`` of the one below (half the size, rounded up), until ``levels`` or until the next
level would be no larger than the window; every level is kept with a reflect-101 border of
``window`` px, and its Scharr x / y derivatives (int16, unscaled) with a zero border of the same
width. :mod:`~gs_tracker_ros.motion.lk_native` tracks points on these buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: One row per pyramid level, read by the native kernel (``LevelView`` in native/lk_batched.cpp):
#: the addresses of pixel (0, 0) of the image and of its two derivatives inside their bordered
#: buffers, the level's size (px) and the buffers' row strides (elements).
LEVEL_DTYPE = np.dtype([("img", np.uintp), ("dx", np.uintp), ("dy", np.uintp), ("rows", np.int32),
                        ("cols", np.int32), ("img_step", np.int32), ("deriv_step", np.int32)])

# Bytes allocated after each bordered buffer: the kernel reads window rows rounded up to 8 columns.
_SLACK_BYTES = 64


@dataclass(frozen=True)
class FramePyramid:
    """The LK pyramid of one grey frame.

    Attributes:
        levels: ``(L,) LEVEL_DTYPE``, level 0 (full resolution) first; valid while this object lives.
        shape: ``(H, W)`` px of level 0.
        window: the LK window side (px) the borders were made for.
        buffers: the bordered arrays ``levels`` points into (kept alive with it).
    """

    levels: np.ndarray
    shape: tuple[int, int]
    window: int
    buffers: tuple[np.ndarray, ...]

    @property
    def num_levels(self) -> int:
        return int(self.levels.shape[0])


def pyramid_levels(shape: tuple[int, int], window: int, max_level: int) -> int:
    """Number of levels (``max_level + 1`` at most) OpenCV's LK uses for a ``shape`` (H, W) image:
    it stops below a level whose half size would be no larger than ``window`` px."""
    h, w = int(shape[0]), int(shape[1])
    for level in range(max_level + 1):
        h, w = (h + 1) // 2, (w + 1) // 2
        if w <= window or h <= window:
            return level + 1
    return max_level + 1


def _bordered(image: np.ndarray, pad: int, border: int) -> np.ndarray:
    """``image`` with ``pad`` px of ``border`` on every side, in a buffer with slack after its end."""
    h, w = image.shape
    rows, cols = h + 2 * pad, w + 2 * pad
    flat = np.empty(rows * cols * image.itemsize + _SLACK_BYTES, np.uint8)
    out = flat[:rows * cols * image.itemsize].view(image.dtype).reshape(rows, cols)
    cv2.copyMakeBorder(image, pad, pad, pad, pad, border, dst=out, value=0)
    return out


def build_pyramid(gray: np.ndarray, window: int, max_level: int) -> FramePyramid:
    """The pyramid of ``gray`` (H, W) uint8 for an LK window of ``window`` px and at most
    ``max_level`` levels above full resolution."""
    gray = np.ascontiguousarray(gray, np.uint8)
    pad = int(window)
    num = pyramid_levels(gray.shape, pad, int(max_level))
    levels = np.zeros(num, LEVEL_DTYPE)
    buffers = []
    image = gray
    for level in range(num):
        if level:
            image = cv2.pyrDown(image)
        img = _bordered(image, pad, cv2.BORDER_REFLECT_101)
        dx = _bordered(cv2.Scharr(image, cv2.CV_16S, 1, 0), pad, cv2.BORDER_CONSTANT)
        dy = _bordered(cv2.Scharr(image, cv2.CV_16S, 0, 1), pad, cv2.BORDER_CONSTANT)
        buffers += [img, dx, dy]
        origin = pad * img.shape[1] + pad  # element offset of pixel (0, 0)
        levels[level] = (img.ctypes.data + origin, dx.ctypes.data + 2 * origin, dy.ctypes.data + 2 * origin,
                         image.shape[0], image.shape[1], img.shape[1], dx.shape[1])
    return FramePyramid(levels, (int(gray.shape[0]), int(gray.shape[1])), pad, tuple(buffers))
