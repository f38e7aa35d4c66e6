"""Sparse pyramidal Lucas-Kanade (OpenCV) at the point positions, with a forward-backward variance."""

from __future__ import annotations

import cv2
import numpy as np

from ..core.clip_buffer import ClipBuffer
from ..core.config import LKConfig
from .base import MotionEstimate, MotionSource


class LucasKanadeSource(MotionSource):
    """Motion of each point by pyramidal LK from frame a to b, then back from b to a.

    ``d = LK_ab(p) - p``; forward-backward error ``e = |LK_ba(p + d) - p|``; variance
    ``s2 = sigma0^2 + e^2``; ``valid`` = both LK passes converged, ``e < fb_threshold`` and the
    landing point inside the image. Cost grows with the number of points (no dense work).
    """

    name = "lk"

    def __init__(self, config: LKConfig | None = None) -> None:
        self.config = config or LKConfig()
        self.config.validate()
        win = int(self.config.window)
        self._params = dict(
            winSize=(win, win),
            maxLevel=int(self.config.levels),
            criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, int(self.config.max_iterations), 0.03),
        )

    def estimate(self, buffer: ClipBuffer, a: int, b: int, points: np.ndarray) -> MotionEstimate:
        n = points.shape[0]
        if n == 0:
            return MotionEstimate(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, bool))
        ga, gb = buffer.gray(a), buffer.gray(b)
        p0 = np.ascontiguousarray(points, np.float32).reshape(-1, 1, 2)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(ga, gb, p0, None, **self._params)
        p0b, st2, _ = cv2.calcOpticalFlowPyrLK(gb, ga, p1, None, **self._params)
        p1 = p1.reshape(n, 2)
        fb_err = np.linalg.norm(p0b.reshape(n, 2) - points, axis=1)
        h, w = buffer.shape
        inside = (p1[:, 0] >= -0.5) & (p1[:, 0] <= w - 0.5) & (p1[:, 1] >= -0.5) & (p1[:, 1] <= h - 0.5)
        ok = (st1.reshape(n) == 1) & (st2.reshape(n) == 1) & np.isfinite(fb_err)
        fb_err = np.where(ok, fb_err, 1e6)
        disp = np.where(ok[:, None], p1 - points, 0.0)
        variance = self.config.sigma0**2 + fb_err**2
        valid = ok & (fb_err < self.config.fb_threshold) & inside
        return MotionEstimate(disp.astype(np.float32), variance.astype(np.float32), valid)
