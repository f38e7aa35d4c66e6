"""Classical baseline: OpenCV pyramidal Lucas-Kanade, frame to frame, as OpenCV users run it.

Each new frame, the points are tracked previous -> current (forward) and back current ->
previous (backward) with :func:`~gs_tracker_ros.motion.lucas_kanade.lk_forward_backward`. The
forward-backward (FB) error is the distance between a point and its round-trip position. Where
the forward pass converged the point moves to its forward position, whatever the FB error;
it is reported visible on that frame only when the FB error is within ``fb_threshold`` px and
it lies inside the image, and occluded otherwise (so a point that fails the check once is not
lost for good: it keeps being tracked and is visible again when the check passes). Where LK
fails to converge the point stays where it was, occluded. A point outside the image stays
occluded until LK brings it back in.

Reported variance (px^2): ``sigma0^2 + fb_error^2`` for a visible point; an occluded point's
variance grows by ``OCCLUDED_GROWTH`` px^2 per frame. The settings are
``TrackerConfig.klt`` (an :class:`~gs_tracker_ros.motion.config.LKConfig`, defaults in
:func:`~gs_tracker_ros.motion.config.klt_baseline_lk`), so ``--set klt.window=31`` and the ROS
parameters ``tracker.klt.*`` reach them.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.clip_buffer import validate_frame
from ..motion.config import LKConfig, klt_baseline_lk
from ..core.errors import ConfigError, InputError
from ..core.geometry import clip_to_image, inside_image
from ..core.geometry import validate_query_points
from ..core.types import TrackState
from ..motion.lucas_kanade import lk_forward_backward, lk_params

OCCLUDED_GROWTH = 4.0  # px^2 per frame added to an occluded point's variance


class KLTTracker:
    """Online pyramidal-LK point tracker implementing :class:`~gs_tracker_ros.core.types.PointTracker`."""

    name = "klt"

    def __init__(self, config: LKConfig | None = None) -> None:
        self.config = config or klt_baseline_lk()
        self.config.validate("klt")
        if self.config.backend != "opencv":
            raise ConfigError(f"klt.backend: the klt baseline runs OpenCV's LK only (got '{self.config.backend}'; "
                              "lk.backend chooses the LK of our tracker)")
        self._params = lk_params(self.config)
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
        self._vis = np.zeros(0, bool)

    def step(self, frame: np.ndarray) -> TrackState:
        """Track all points into ``frame`` (RGB uint8 HxWx3) and return their state."""
        frame = validate_frame(frame)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if self._gray is not None and gray.shape != self._gray.shape:
            raise InputError(
                f"frame size changed from {self._gray.shape[1]}x{self._gray.shape[0]} to "
                f"{gray.shape[1]}x{gray.shape[0]}; reset the tracker before changing resolution"
            )
        if self._gray is not None and len(self._ids):
            self._track(self._gray, gray)
        self._gray = gray
        self._frame_index += 1
        return self.state()

    def add_queries(self, xy: np.ndarray) -> np.ndarray:
        """Add queries ``(N, 2)`` px on the latest frame; returns their new ids ``(N,) int64``."""
        if self._gray is None:
            raise InputError("add_queries needs a frame first: call step(frame) before adding queries")
        pts = validate_query_points(xy, self._gray.shape).astype(np.float32)
        n = pts.shape[0]
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        self._ids = np.concatenate([self._ids, ids])
        self._xy = np.concatenate([self._xy, pts])
        self._vis = np.concatenate([self._vis, np.ones(n, bool)])
        self._var = np.concatenate([self._var, np.zeros(n, np.float32)])
        return ids

    def remove_queries(self, ids: np.ndarray) -> None:
        """Stop tracking ``ids``; unknown ids raise ``KeyError`` (and nothing is removed)."""
        ids = np.atleast_1d(np.asarray(ids, np.int64))
        unknown = ids[~np.isin(ids, self._ids)]
        if unknown.size:
            raise KeyError(f"unknown query ids: {unknown.tolist()}")
        keep = ~np.isin(self._ids, ids)
        self._ids, self._xy = self._ids[keep], self._xy[keep]
        self._var, self._vis = self._var[keep], self._vis[keep]

    def state(self) -> TrackState:
        """Current tracks on the latest frame (copies)."""
        return TrackState(self._frame_index, self._ids.copy(), self._xy.copy(), self._var.copy(),
                          self._vis.copy())

    # ------------------------------------------------------------------ internals
    def _track(self, prev: np.ndarray, cur: np.ndarray) -> None:
        res = lk_forward_backward(prev, cur, self._xy, self._params)
        inside = inside_image(res.landing, cur.shape)
        visible = res.converged & inside & (res.fb_error <= self.config.fb_threshold)
        self._xy = clip_to_image(res.landing, cur.shape).astype(np.float32)
        fb = np.where(res.converged, res.fb_error, 0.0)
        self._var = np.where(visible, self.config.sigma0**2 + fb**2,
                             self._var + OCCLUDED_GROWTH).astype(np.float32)
        self._vis = visible
