"""Trackers that stand in for a real one in evaluation tests (test/ is on sys.path)."""

from __future__ import annotations

import numpy as np

from gs_tracker_ros.core.types import TrackState


class StaticTracker:
    """Every point stays where it was queried, always visible: slides off any moving object.

    The floor of every score: a tracker that does nothing.
    """

    name = "static"

    def reset(self) -> None:
        self.xy = np.zeros((0, 2), np.float32)
        self.t = -1

    def step(self, frame: np.ndarray) -> TrackState:
        self.t += 1
        n = len(self.xy)
        return TrackState(self.t, np.arange(n), self.xy.copy(), np.ones(n, np.float32), np.ones(n, bool))

    def add_queries(self, xy: np.ndarray) -> np.ndarray:
        start = len(self.xy)
        self.xy = np.concatenate([self.xy, np.asarray(xy, np.float32)])
        return np.arange(start, len(self.xy))

    def remove_queries(self, ids: np.ndarray) -> None:
        raise KeyError(ids)
