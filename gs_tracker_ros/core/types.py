"""Plain data types shared by trackers, the CLI, evaluation and the ROS node."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np

from .geometry import inside_image


class TrackStatus(IntEnum):
    """What is known about a tracked point on one frame (``uint8`` codes, also in the ``.npz``
    output of ``gs-tracker track`` and in ``PointTrack.status``; the values are the message's
    ``STATUS_*`` constants).

    * ``NOT_TRACKED`` (0): no estimate on this frame (before the point's query frame, after it was
      removed); never published for a live track.
    * ``VISIBLE`` (1): the point is seen on this frame.
    * ``OCCLUDED`` (2): inside the image but hidden (behind something, or lost by the motion
      chains); its position is the hidden-point estimate (:mod:`~gs_tracker_ros.core.hidden_motion`).
    * ``OUT_OF_VIEW`` (3): its estimate lies outside the image
      (``x`` outside ``[-0.5, W - 0.5)`` or ``y`` outside ``[-0.5, H - 0.5)``); it is still tracked
      and may be re-found when it re-enters.
    """

    NOT_TRACKED = 0
    VISIBLE = 1
    OCCLUDED = 2
    OUT_OF_VIEW = 3


def track_status(xy: np.ndarray, visible: np.ndarray, shape_hw: tuple[int, int] | None) -> np.ndarray:
    """``(N,) uint8`` :class:`TrackStatus` codes from positions ``xy (N, 2)`` px and ``visible (N,)``.

    A point outside the image is ``OUT_OF_VIEW`` even if ``visible`` says otherwise; without an
    image size (``shape_hw`` None) hidden points are ``OCCLUDED``.
    """
    xy = np.asarray(xy).reshape(-1, 2)
    visible = np.asarray(visible, bool).reshape(-1)
    status = np.where(visible, TrackStatus.VISIBLE, TrackStatus.OCCLUDED).astype(np.uint8)
    if shape_hw is not None:
        status[~inside_image(xy, shape_hw)] = TrackStatus.OUT_OF_VIEW
    return status


@dataclass(frozen=True)
class TrackState:
    """Tracker output for one frame.

    Attributes:
        frame_index: index of the frame the positions refer to (0-based, counted by the tracker).
        ids: ``(N,) int64`` stable query ids.
        xy: ``(N, 2) float32`` positions in pixels (x right, y down).
        variance: ``(N,) float32`` isotropic positional variance in px^2.
        visible: ``(N,) bool`` False when the point is judged occluded or out of view (kept for
            compatibility: ``visible == (status == TrackStatus.VISIBLE)``).
        status: ``(N,) uint8`` :class:`TrackStatus` codes; when not given, derived from ``visible``
            (``VISIBLE`` / ``OCCLUDED``: a tracker that knows the image size passes it).
        p_lost: ``(N,) float32`` probability in [0, 1] that the position is wrong by more than
            its spread (``variance`` is the spread when it is right, see
            :mod:`~gs_tracker_ros.core.uncertainty`); NaN for a tracker that does not estimate
            it (the classical baselines), which is also the default.
    """

    frame_index: int
    ids: np.ndarray
    xy: np.ndarray
    variance: np.ndarray
    visible: np.ndarray
    status: np.ndarray | None = None
    p_lost: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            object.__setattr__(self, "status", track_status(self.xy, self.visible, None))
        if self.p_lost is None:
            object.__setattr__(self, "p_lost", np.full(len(self.ids), np.nan, np.float32))

    @staticmethod
    def empty(frame_index: int) -> "TrackState":
        return TrackState(
            frame_index,
            np.zeros(0, np.int64),
            np.zeros((0, 2), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, bool),
            np.zeros(0, np.uint8),
            np.zeros(0, np.float32),
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
