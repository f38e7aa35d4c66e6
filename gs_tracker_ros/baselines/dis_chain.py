"""Classical baseline: one dense DIS flow chain, frame to frame, online.

Each point is moved by the DIS flow from the previous frame to the current one, every frame,
whatever happened before (no re-anchoring, no fusion). It is reported visible on a frame when
that step's forward-backward check passes (see :class:`~gs_tracker_ros.motion.dis_flow.DISFlowSource`).
"""

from __future__ import annotations

import numpy as np

from ..core.clip_buffer import ClipBuffer
from ..motion.config import FlowConfig
from ..core.errors import InputError
from ..core.geometry import clip_to_image
from ..core.geometry import validate_query_points
from ..core.types import TrackState
from ..motion.dis_flow import DISFlowSource


class DISChainTracker:
    """Online single-chain DIS tracker implementing the ``PointTracker`` protocol."""

    name = "dis-chain"

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.source = DISFlowSource(config or FlowConfig())
        self.buffer = ClipBuffer(capacity=2)
        self.reset()

    def reset(self) -> None:
        self.buffer.clear()
        self.source.reset()
        self._next_id = 0
        self.ids = np.zeros(0, np.int64)
        self.xy = np.zeros((0, 2), np.float64)
        self.var = np.zeros(0, np.float64)
        self.vis = np.zeros(0, bool)

    def state(self) -> TrackState:
        return TrackState(self.buffer.latest, self.ids.copy(), self.xy.astype(np.float32),
                          self.var.astype(np.float32), self.vis.copy())

    def add_queries(self, xy: np.ndarray) -> np.ndarray:
        if self.buffer.latest < 0:
            raise InputError("cannot add queries before the first frame was given to the tracker")
        pts = validate_query_points(xy, self.buffer.shape)
        ids = np.arange(self._next_id, self._next_id + len(pts), dtype=np.int64)
        self._next_id += len(pts)
        self.ids = np.concatenate([self.ids, ids])
        self.xy = np.concatenate([self.xy, pts])
        self.var = np.concatenate([self.var, np.zeros(len(pts))])
        self.vis = np.concatenate([self.vis, np.ones(len(pts), bool)])
        return ids

    def remove_queries(self, ids: np.ndarray) -> None:
        ids = np.atleast_1d(np.asarray(ids, np.int64))
        missing = np.setdiff1d(ids, self.ids)
        if missing.size:
            raise KeyError(f"unknown track id(s): {missing[:10].tolist()}")
        keep = ~np.isin(self.ids, ids)
        self.ids, self.xy, self.var, self.vis = self.ids[keep], self.xy[keep], self.var[keep], self.vis[keep]

    def step(self, frame: np.ndarray) -> TrackState:
        t = self.buffer.push(frame)
        self.source.on_frame(self.buffer, t)
        if t > 0 and len(self.ids):
            est = self.source.estimate(self.buffer, t - 1, t, self.xy.astype(np.float32))
            self.xy = clip_to_image(self.xy + est.displacement, self.buffer.shape)
            self.var = self.var + est.variance
            self.vis = est.valid
        return self.state()
