"""Sparse pyramidal Lucas-Kanade at the point positions, with a forward-backward variance.

Two backends compute the same passes (``lk.backend``): OpenCV's ``calcOpticalFlowPyrLK`` (the
reference) and the batched kernel of :mod:`~gs_tracker_ros.motion.lk_native` (pyramids once per
frame, every chain of a frame in one multi-threaded call).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..core.clip_buffer import ClipBuffer
from .config import LKConfig
from ..core.geometry import inside_image
from .base import MotionEstimate, MotionSource
from .lk_native import LKSettings, default_threads, forward_backward_many, library_path, load_library
from .lk_pyramid import FramePyramid, PyramidPool

_log = logging.getLogger(__name__)


def lk_params(config: LKConfig) -> dict:
    """``calcOpticalFlowPyrLK`` keyword arguments for ``config``."""
    win = int(config.window)
    return dict(
        winSize=(win, win),
        maxLevel=int(config.levels),
        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, int(config.max_iterations),
                  float(config.epsilon)),
        minEigThreshold=float(config.min_eig_threshold),
    )


@dataclass(frozen=True)
class LKResult:
    """One forward-backward LK pass for N points from image a to image b.

    Attributes:
        landing: ``(N, 2) float32`` px, the forward LK position in image b (the start point
            where the forward pass failed).
        fb_error: ``(N,) float32`` px, ``|LK_ba(landing) - p|``; ``inf`` where either pass failed.
        converged: ``(N,) bool`` both passes reported success and returned finite values.
    """

    landing: np.ndarray
    fb_error: np.ndarray
    converged: np.ndarray


def lk_forward_backward(gray_a: np.ndarray, gray_b: np.ndarray, points: np.ndarray, params: dict) -> LKResult:
    """Pyramidal LK from ``gray_a`` to ``gray_b`` and back, for ``points (N, 2)`` px in image a."""
    n = points.shape[0]
    pts = np.asarray(points, np.float32).reshape(n, 2)
    if n == 0:
        return LKResult(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, bool))
    p0 = np.ascontiguousarray(pts.reshape(-1, 1, 2))
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, p0, None, **params)
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, p1, None, **params)
    return fb_result(pts, p1.reshape(n, 2), st1.reshape(n) == 1, p0b.reshape(n, 2), st2.reshape(n) == 1)


def fb_result(points: np.ndarray, forward: np.ndarray, forward_ok: np.ndarray, backward: np.ndarray,
              backward_ok: np.ndarray) -> LKResult:
    """The :class:`LKResult` of a forward pass (positions ``(N, 2)`` px in image b and success) and
    the backward pass from there (positions in image a and success), for ``points (N, 2)`` px."""
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    fb = np.linalg.norm(backward - pts, axis=1)
    ok = forward_ok & backward_ok & np.isfinite(fb) & np.isfinite(forward).all(axis=1)
    landing = np.where(ok[:, None], forward, pts).astype(np.float32)
    return LKResult(landing, np.where(ok, fb, np.inf).astype(np.float32), ok)


class LucasKanadeSource(MotionSource):
    """Motion of each point by pyramidal LK from frame a to b, then back from b to a.

    ``d = LK_ab(p) - p``; forward-backward error ``e = |LK_ba(p + d) - p|``; variance
    ``s2 = sigma0^2 + e^2``; ``valid`` = both LK passes converged, ``e < fb_threshold`` and the
    landing point inside the image. Cost grows with the number of points (no dense work).

    With ``config.backend == "batched"`` (and the kernel built) each frame's pyramid is built once
    (cached in the :class:`ClipBuffer`, dropped with the frame) and :meth:`estimate_many` runs the
    chains of a frame in one kernel call; otherwise every pair is two OpenCV calls.
    """

    name = "lk"
    thread_safe = True
    dense = False  # per point: the cost grows with the points, not with the image

    def __init__(self, config: LKConfig | None = None) -> None:
        self.config = config or LKConfig()
        self.config.validate()
        self._params = lk_params(self.config)
        self._settings = LKSettings(int(self.config.window), int(self.config.max_iterations),
                                    float(self.config.epsilon), float(self.config.min_eig_threshold))
        self._threads = int(self.config.threads) or default_threads()
        self._pyramid_key = f"lk_pyramid:{self.config.window}:{self.config.levels}"
        self._pyramids = PyramidPool()
        self.batched = self.config.backend == "batched" and load_library() is not None
        self.batches = self.batched  # the tracker hands estimate_many every chain of a frame
        if self.config.backend == "batched" and not self.batched:
            _log.warning("lk.backend batched: the LK kernel is not built (%s missing; `make setup` builds "
                         "it), running OpenCV's LK instead (the same tracks, slower)", library_path())

    def on_frame(self, buffer: ClipBuffer, index: int) -> None:
        # Prepared once here, so that chains running at once never race on the cache.
        if self.batched:
            self.pyramid(buffer, index)
        else:
            buffer.gray(index)

    def pyramid(self, buffer: ClipBuffer, index: int) -> FramePyramid:
        """The LK pyramid of buffered frame ``index`` (built on first use, cached with the frame)."""
        return buffer.cached(index, self._pyramid_key, lambda _rgb: self._pyramids.build(
            buffer.gray(index), self.config.window, self.config.levels))

    def estimate(self, buffer: ClipBuffer, a: int, b: int, points: np.ndarray) -> MotionEstimate:
        return self.estimate_many(buffer, [(a, b, points)])[0]

    def estimate_many(self, buffer: ClipBuffer,
                      pairs: Sequence[tuple[int, int, np.ndarray]]) -> list[MotionEstimate]:
        """:meth:`estimate` of every ``(a, b, points)`` in ``pairs``, in order; with the batched
        backend all of them in one kernel call."""
        if self.batched:
            passes = forward_backward_many(
                [(self.pyramid(buffer, a), self.pyramid(buffer, b), pts) for a, b, pts in pairs],
                self._settings, self._threads)
            results = [fb_result(pts, p.forward, p.forward_ok, p.backward, p.backward_ok)
                       for (_, _, pts), p in zip(pairs, passes)]
        else:
            results = [lk_forward_backward(buffer.gray(a), buffer.gray(b), pts, self._params) for a, b, pts in pairs]
        return [self._motion(res, pts, buffer.shape) for (_, _, pts), res in zip(pairs, results)]

    def _motion(self, res: LKResult, points: np.ndarray, shape: tuple[int, int]) -> MotionEstimate:
        fb_err = np.where(res.converged, res.fb_error, 1e6)
        disp = res.landing - np.asarray(points, np.float32)
        variance = self.config.sigma0**2 + fb_err**2
        valid = res.converged & (fb_err < self.config.fb_threshold) & inside_image(res.landing, shape)
        return MotionEstimate(disp.astype(np.float32), variance.astype(np.float32), valid,
                              res.fb_error.astype(np.float32))
