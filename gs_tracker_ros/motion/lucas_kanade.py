"""Sparse pyramidal Lucas-Kanade (OpenCV) at the point positions, with a forward-backward variance."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.clip_buffer import ClipBuffer
from .config import LKConfig
from ..core.geometry import inside_image
from .base import MotionEstimate, MotionSource


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
    p1 = p1.reshape(n, 2)
    fb = np.linalg.norm(p0b.reshape(n, 2) - pts, axis=1)
    ok = (st1.reshape(n) == 1) & (st2.reshape(n) == 1) & np.isfinite(fb) & np.isfinite(p1).all(axis=1)
    landing = np.where(ok[:, None], p1, pts).astype(np.float32)
    return LKResult(landing, np.where(ok, fb, np.inf).astype(np.float32), ok)


class LucasKanadeSource(MotionSource):
    """Motion of each point by pyramidal LK from frame a to b, then back from b to a.

    ``d = LK_ab(p) - p``; forward-backward error ``e = |LK_ba(p + d) - p|``; variance
    ``s2 = sigma0^2 + e^2``; ``valid`` = both LK passes converged, ``e < fb_threshold`` and the
    landing point inside the image. Cost grows with the number of points (no dense work).
    """

    name = "lk"
    thread_safe = True

    def __init__(self, config: LKConfig | None = None) -> None:
        self.config = config or LKConfig()
        self.config.validate()
        self._params = lk_params(self.config)

    def on_frame(self, buffer: ClipBuffer, index: int) -> None:
        buffer.gray(index)  # converted once here, so that chains running at once never race on it

    def estimate(self, buffer: ClipBuffer, a: int, b: int, points: np.ndarray) -> MotionEstimate:
        res = lk_forward_backward(buffer.gray(a), buffer.gray(b), points, self._params)
        fb_err = np.where(res.converged, res.fb_error, 1e6)
        disp = res.landing - np.asarray(points, np.float32)
        variance = self.config.sigma0**2 + fb_err**2
        valid = res.converged & (fb_err < self.config.fb_threshold) & inside_image(res.landing, buffer.shape)
        return MotionEstimate(disp.astype(np.float32), variance.astype(np.float32), valid,
                              res.fb_error.astype(np.float32))
