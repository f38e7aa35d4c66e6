"""Plain data types shared by trackers, the CLI, evaluation and the ROS node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class TrackState:
    """Tracker output for one frame.

    Attributes:
        frame_index: index of the frame the positions refer to (0-based, counted by the tracker).
        ids: ``(N,) int64`` stable query ids.
        xy: ``(N, 2) float32`` positions in pixels (x right, y down).
        variance: ``(N,) float32`` isotropic positional variance in px^2.
        visible: ``(N,) bool`` False when the point is judged occluded or out of view.
    """

    frame_index: int
    ids: np.ndarray
    xy: np.ndarray
    variance: np.ndarray
    visible: np.ndarray

    @staticmethod
    def empty(frame_index: int) -> "TrackState":
        return TrackState(
            frame_index,
            np.zeros(0, np.int64),
            np.zeros((0, 2), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, bool),
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class PointTracker(Protocol):
    """Online point tracker: frames arrive one at a time, queries at any time.

    Every method the CLI, the evaluation and the ROS node use; all trackers (ours and the
    classical baselines) implement it, so there is one pipeline for all of them.
    """

    name: str

    def step(self, frame: np.ndarray) -> TrackState:
        """Consume the next frame (RGB uint8 HxWx3) and return the live tracks on it."""

    def add_queries(self, xy: np.ndarray) -> np.ndarray:
        """Place queries ``(N, 2)`` px on the most recent frame given to ``step``; return their ids."""

    def remove_queries(self, ids: np.ndarray) -> None:
        """Stop tracking these ids (unknown ids raise ``KeyError``)."""

    def reset(self) -> None:
        """Forget all frames and queries."""
