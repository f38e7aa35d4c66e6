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
    p1, st1, _ = lk_one_way(gray_a, gray_b, pts, params)
    p0b, st2, _ = lk_one_way(gray_b, gray_a, p1, params)
    return fb_result(pts, p1, st1, p0b, st2)


def lk_one_way(gray_a: np.ndarray, gray_b: np.ndarray, points: np.ndarray,
               params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's pyramidal LK from ``gray_a`` to ``gray_b`` for ``points (N, 2)`` px: positions
    ``(N, 2) float32`` px in image b, OpenCV's success flags ``(N,)`` and its error ``(N,)
    float32`` (mean absolute grey-level difference of the windows; ``inf`` where it failed)."""
    n = len(points)
    if n == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, bool), np.zeros(0, np.float32)
    p0 = np.ascontiguousarray(np.asarray(points, np.float32).reshape(-1, 1, 2))
    p1, st, err = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, p0, None, **params)
    ok = st.reshape(n) == 1
    return p1.reshape(n, 2), ok, np.where(ok, err.reshape(n), np.inf).astype(np.float32)


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
        # the tracker hands estimate_many every chain of a frame (backward_check doubt compares them)
        self.batches = self.batched or self.config.backward_check == "doubt"
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

    def estimate_many(self, buffer: ClipBuffer, pairs: Sequence[tuple[int, int, np.ndarray]],
                      point_ids: Sequence[np.ndarray] | None = None) -> list[MotionEstimate]:
        """:meth:`estimate` of every ``(a, b, points)`` in ``pairs``, in order; with the batched
        backend all of them in one kernel call. ``point_ids`` (the tracker's index of each point of
        each pair) lets ``backward_check: doubt`` compare the chains of one point."""
        if self.config.backward_check == "doubt" and point_ids is not None:
            results = self._checked_where_in_doubt(buffer, pairs, point_ids)
        elif self.batched:
            passes = forward_backward_many(
                [(self.pyramid(buffer, a), self.pyramid(buffer, b), pts) for a, b, pts in pairs],
                self._settings, self._threads)
            results = [fb_result(pts, p.forward, p.forward_ok, p.backward, p.backward_ok)
                       for (_, _, pts), p in zip(pairs, passes)]
        else:
            results = [lk_forward_backward(buffer.gray(a), buffer.gray(b), pts, self._params) for a, b, pts in pairs]
        return [self._motion(res, pts, buffer.shape) for (_, _, pts), res in zip(pairs, results)]

    def _one_way(self, buffer: ClipBuffer, pairs: Sequence[tuple[int, int, np.ndarray]]
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """LK from frame a to frame b only, per ``(a, b, points)``: ``(positions (N, 2) px in b,
        success (N,), window residual (N,) grey levels)`` (success also requires finite positions)."""
        if self.batched:
            passes = forward_backward_many(
                [(self.pyramid(buffer, a), self.pyramid(buffer, b), pts) for a, b, pts in pairs],
                self._settings, self._threads, backward=False, residual=True)
            out = [(p.forward, p.forward_ok, p.forward_residual) for p in passes]
        else:
            out = [lk_one_way(buffer.gray(a), buffer.gray(b), pts, self._params) for a, b, pts in pairs]
        return [(xy, ok & np.isfinite(xy).all(axis=1), res) for xy, ok, res in out]

    def _checked_where_in_doubt(self, buffer: ClipBuffer, pairs: Sequence[tuple[int, int, np.ndarray]],
                                point_ids: Sequence[np.ndarray]) -> list[LKResult]:
        """``backward_check: doubt``: every chain forward; back only the chains of the points whose
        successful forward landings lie more than ``doubt_px`` from their mean, or that have one,
        or one of whose forward windows changed by more than ``doubt_residual`` grey levels."""
        forward = self._one_way(buffer, pairs)
        counts = [len(pts) for _, _, pts in pairs]
        if sum(counts) == 0:
            return [LKResult(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, bool)) for _ in pairs]
        landing = np.concatenate([xy for xy, _, _ in forward]).astype(np.float64)
        ok = np.concatenate([good for _, good, _ in forward])
        changed = ok & (np.concatenate([res for _, _, res in forward]) > self.config.doubt_residual)
        _, point = np.unique(np.concatenate([np.asarray(i) for i in point_ids]), return_inverse=True)
        chains = np.bincount(point, weights=ok)
        safe = np.where(ok[:, None], landing, 0.0)
        mean = np.stack([np.bincount(point, weights=safe[:, 0]), np.bincount(point, weights=safe[:, 1])], axis=1)
        mean /= np.maximum(chains, 1)[:, None]
        spread = np.linalg.norm(landing - mean[point], axis=1)
        apart = np.bincount(point, weights=ok & ((spread > self.config.doubt_px) | changed)) > 0
        doubt = ok & (apart[point] | (chains[point] < 2))
        fb = np.where(ok, spread, np.inf)
        converged = ok.copy()
        bounds = np.cumsum([0, *counts])
        back_pairs = [(b, a, landing[lo:hi][doubt[lo:hi]]) for (a, b, _), lo, hi in zip(pairs, bounds[:-1], bounds[1:])]
        for ((_, _, pts), lo, hi), (back, back_ok, _) in zip(zip(pairs, bounds[:-1], bounds[1:]), self._one_way(buffer, back_pairs)):
            rows = lo + np.flatnonzero(doubt[lo:hi])
            start = np.asarray(pts, np.float32).reshape(-1, 2)[rows - lo]
            checked = fb_result(start, landing[rows].astype(np.float32), ok[rows], back, back_ok)
            fb[rows], converged[rows] = checked.fb_error, checked.converged
        out = []
        for (_, _, pts), lo, hi in zip(pairs, bounds[:-1], bounds[1:]):
            good = converged[lo:hi] & np.isfinite(fb[lo:hi])
            land = np.where(good[:, None], landing[lo:hi], np.asarray(pts, np.float64).reshape(-1, 2))
            out.append(LKResult(land.astype(np.float32), np.where(good, fb[lo:hi], np.inf).astype(np.float32), good))
        return out

    def _motion(self, res: LKResult, points: np.ndarray, shape: tuple[int, int]) -> MotionEstimate:
        fb_err = np.where(res.converged, res.fb_error, 1e6)
        disp = res.landing - np.asarray(points, np.float32)
        variance = self.config.sigma0**2 + fb_err**2
        valid = res.converged & (fb_err < self.config.fb_threshold) & inside_image(res.landing, shape)
        return MotionEstimate(disp.astype(np.float32), variance.astype(np.float32), valid,
                              res.fb_error.astype(np.float32))
