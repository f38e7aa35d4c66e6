"""One frame's LK image pyramid, built once and shared by every chain and direction that uses it.

The layout is what OpenCV's ``calcOpticalFlowPyrLK`` builds inside every call (and what its
Python binding will not take precomputed): level 0 is the grey frame, each further level
``cv2.pyrDown`` of the one below (half the size, rounded up), until ``levels`` or until the next
level would be no larger than the window; every level is kept with a reflect-101 border of
``window`` px, and its Scharr x / y derivatives (int16, unscaled) with a zero border of the same
width. :mod:`~gs_tracker_ros.motion.lk_native` tracks points on these buffers.
"""

from __future__ import annotations

import threading
import weakref
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


def _bordered(image: np.ndarray, pad: int, border: int, reuse: np.ndarray | None = None) -> np.ndarray:
    """``image`` with ``pad`` px of ``border`` on every side, in a buffer with slack after its end
    (``reuse``, when it is one of the right shape and type, else a new one)."""
    h, w = image.shape
    rows, cols = h + 2 * pad, w + 2 * pad
    if reuse is not None and reuse.shape == (rows, cols) and reuse.dtype == image.dtype:
        out = reuse
    else:
        flat = np.empty(rows * cols * image.itemsize + _SLACK_BYTES, np.uint8)
        out = flat[:rows * cols * image.itemsize].view(image.dtype).reshape(rows, cols)
    cv2.copyMakeBorder(image, pad, pad, pad, pad, border, dst=out, value=0)
    return out


def build_pyramid(gray: np.ndarray, window: int, max_level: int,
                  reuse: tuple[np.ndarray, ...] = ()) -> FramePyramid:
    """The pyramid of ``gray`` (H, W) uint8 for an LK window of ``window`` px and at most
    ``max_level`` levels above full resolution; written into the ``buffers`` of an unused
    pyramid (``reuse``) where they fit."""
    gray = np.ascontiguousarray(gray, np.uint8)
    pad = int(window)
    num = pyramid_levels(gray.shape, pad, int(max_level))
    levels = np.zeros(num, LEVEL_DTYPE)
    buffers = []
    old = list(reuse) + [None] * (3 * num - len(reuse))
    image = gray
    for level in range(num):
        if level:
            image = cv2.pyrDown(image)
        img = _bordered(image, pad, cv2.BORDER_REFLECT_101, old[3 * level])
        dx = _bordered(cv2.Scharr(image, cv2.CV_16S, 1, 0), pad, cv2.BORDER_CONSTANT, old[3 * level + 1])
        dy = _bordered(cv2.Scharr(image, cv2.CV_16S, 0, 1), pad, cv2.BORDER_CONSTANT, old[3 * level + 2])
        buffers += [img, dx, dy]
        origin = pad * img.shape[1] + pad  # element offset of pixel (0, 0)
        levels[level] = (img.ctypes.data + origin, dx.ctypes.data + 2 * origin, dy.ctypes.data + 2 * origin,
                         image.shape[0], image.shape[1], img.shape[1], dx.shape[1])
    return FramePyramid(levels, (int(gray.shape[0]), int(gray.shape[1])), pad, tuple(buffers))


class PyramidPool:
    """Builds frame pyramids into the buffers of pyramids no longer used (a pyramid is dropped
    with its frame from the clip buffer), so that a long stream allocates no new ones: the
    allocation churn of ~3 MB per frame otherwise made the process's memory creep.

    Args:
        capacity: buffer sets kept for reuse (the rest are freed).
    """

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = int(capacity)
        self._free: list[tuple[np.ndarray, ...]] = []
        self._lock = threading.Lock()

    def build(self, gray: np.ndarray, window: int, max_level: int) -> FramePyramid:
        """:func:`build_pyramid`, reusing a released buffer set when there is one."""
        with self._lock:
            reuse = self._free.pop() if self._free else ()
        pyramid = build_pyramid(gray, window, max_level, reuse)
        weakref.finalize(pyramid, self._release, pyramid.buffers)
        return pyramid

    def _release(self, buffers: tuple[np.ndarray, ...]) -> None:
        with self._lock:
            if len(self._free) < self.capacity:
                self._free.append(buffers)

    def __len__(self) -> int:
        return len(self._free)
