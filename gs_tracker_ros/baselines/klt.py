"""Classical baseline: OpenCV pyramidal Lucas-Kanade, frame to frame, with a forward-backward check.

Each new frame, the live points are tracked previous -> current (forward) and the result back
current -> previous (backward). The forward-backward (FB) error is the distance between a point
and its round-trip position. A point is lost when LK reports failure in either direction, its FB
error exceeds ``fb_threshold`` px, or it leaves the image; a lost point stays at its last
position, invisible, for good (no re-detection), like a typical classical tracker.
Variance reported for a tracked point: ``fb_error^2 + variance_floor`` (px^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.clip_buffer import validate_frame
from ..core.errors import ConfigError, InputError
from ..core.types import TrackState


@dataclass(frozen=True)
class KLTConfig:
    """Settings of :class:`KLTTracker`.

    Attributes:
        win_size: LK window side in px (square window).
        max_level: number of pyramid levels above the full-resolution image.
        max_iterations, epsilon: LK stopping criteria per level (iterations, px).
        fb_threshold: forward-backward error in px above which a point is lost.
        variance_floor: px^2 added to fb_error^2 in the reported variance.
        lost_variance: px^2 reported for lost points.
        min_eig_threshold: LK minimum-eigenvalue threshold (texture-less windows fail).
    """

    win_size: int = 21
    max_level: int = 3
    max_iterations: int = 30
    epsilon: float = 0.01
    fb_threshold: float = 1.0
    variance_floor: float = 0.25
    lost_variance: float = 1.0e4
    min_eig_threshold: float = 1.0e-4

    def __post_init__(self) -> None:
        if self.win_size < 3:
            raise ConfigError(f"KLTConfig.win_size must be >= 3, got {self.win_size}")
        if self.max_level < 0:
            raise ConfigError(f"KLTConfig.max_level must be >= 0, got {self.max_level}")
        if self.max_iterations < 1 or self.epsilon <= 0:
            raise ConfigError("KLTConfig.max_iterations must be >= 1 and epsilon > 0")
        if self.fb_threshold <= 0 or self.variance_floor < 0 or self.lost_variance <= 0:
            raise ConfigError("KLTConfig thresholds/variances must be positive")


class KLTTracker:
    """Online pyramidal-LK point tracker implementing :class:`~gs_tracker_ros.core.types.PointTracker`."""

    name = "klt"

    def __init__(self, config: KLTConfig | None = None) -> None:
        self.config = config or KLTConfig()
        c = self.config
        self._lk_params = dict(
            winSize=(c.win_size, c.win_size),
            maxLevel=c.max_level,
            criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, c.max_iterations, c.epsilon),
            minEigThreshold=c.min_eig_threshold,
        )
        self.reset()

    # ------------------------------------------------------------------ protocol
    def reset(self) -> None:
        """Forget all frames and queries; ids start again from 0."""
        self._gray: np.ndarray | None = None
        self._frame_index = -1
        self._next_id = 0
        self._ids = np.zeros(0, np.int64)
        self._xy = np.zeros((0, 2), np.float32)
        self._var = np.zeros(0, np.float32)
        self._alive = np.zeros(0, bool)

    def step(self, frame: np.ndarray) -> TrackState:
        """Track all live points into ``frame`` (RGB uint8 HxWx3) and return their state."""
        frame = validate_frame(frame)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if self._gray is not None and gray.shape != self._gray.shape:
            raise InputError(
                f"frame size changed from {self._gray.shape[1]}x{self._gray.shape[0]} to "
                f"{gray.shape[1]}x{gray.shape[0]}; reset the tracker before changing resolution"
            )
        if self._gray is not None and self._alive.any():
            self._track(self._gray, gray)
        self._gray = gray
        self._frame_index += 1
        return self.state()

    def add_queries(self, xy: np.ndarray) -> np.ndarray:
        """Add queries ``(N, 2)`` px on the latest frame; returns their new ids ``(N,) int64``.

        Queries outside the image are accepted but lost (invisible) from the start.
        """
        if self._gray is None:
            raise InputError("add_queries needs a frame first: call step(frame) before adding queries")
        xy = np.asarray(xy, np.float32)
        if xy.ndim == 1 and xy.shape == (2,):
            xy = xy[None]
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise InputError(f"queries must have shape (N, 2), got {xy.shape}")
        if not np.all(np.isfinite(xy)):
            raise InputError("queries must be finite numbers")
        n = xy.shape[0]
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        self._ids = np.concatenate([self._ids, ids])
        self._xy = np.concatenate([self._xy, xy])
        inside = self._inside(xy)
        self._alive = np.concatenate([self._alive, inside])
        var = np.where(inside, 0.0, self.config.lost_variance).astype(np.float32)
        self._var = np.concatenate([self._var, var])
        return ids

    def remove_queries(self, ids: np.ndarray) -> None:
        """Stop tracking ``ids``; unknown ids raise ``KeyError`` (and nothing is removed)."""
        ids = np.atleast_1d(np.asarray(ids, np.int64))
        unknown = ids[~np.isin(ids, self._ids)]
        if unknown.size:
            raise KeyError(f"unknown query ids: {unknown.tolist()}")
        keep = ~np.isin(self._ids, ids)
        self._ids, self._xy = self._ids[keep], self._xy[keep]
        self._var, self._alive = self._var[keep], self._alive[keep]

    def state(self) -> TrackState:
        """Current tracks on the latest frame (copies)."""
        return TrackState(
            frame_index=self._frame_index,
            ids=self._ids.copy(),
            xy=self._xy.copy(),
            variance=self._var.copy(),
            visible=self._alive.copy(),
        )

    # ------------------------------------------------------------------ internals
    def _inside(self, xy: np.ndarray) -> np.ndarray:
        assert self._gray is not None
        h, w = self._gray.shape
        return (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)

    def _track(self, prev: np.ndarray, cur: np.ndarray) -> None:
        # NB: OpenCV 5.0 rejects precomputed pyramids here, so plain grayscale images are passed.
        idx = np.flatnonzero(self._alive)
        p0 = np.ascontiguousarray(self._xy[idx].reshape(-1, 1, 2), np.float32)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, **self._lk_params)
        p0r, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1, None, **self._lk_params)
        p1, p0r = p1.reshape(-1, 2), p0r.reshape(-1, 2)
        fb = np.linalg.norm(p0r - p0.reshape(-1, 2), axis=1)
        h, w = cur.shape
        ok = (
            (st1.ravel() == 1)
            & (st2.ravel() == 1)
            & np.isfinite(p1).all(axis=1)
            & (fb <= self.config.fb_threshold)
            & (p1[:, 0] >= 0)
            & (p1[:, 0] <= w - 1)
            & (p1[:, 1] >= 0)
            & (p1[:, 1] <= h - 1)
        )
        good, lost = idx[ok], idx[~ok]
        self._xy[good] = p1[ok]
        self._var[good] = fb[ok] ** 2 + self.config.variance_floor
        self._alive[lost] = False
        self._var[lost] = self.config.lost_variance
