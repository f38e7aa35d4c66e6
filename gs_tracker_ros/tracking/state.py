"""Per-point state of the probabilistic tracker: one struct of arrays, one row per live point.

Positions in pixels of the input frame (x right, y down), variances in px^2, frames are stream
indices (0 = the first frame given to the tracker). The ring holds the last ``R`` fused states
of each point: frame ``s`` lives in slot ``s % R`` and ``ring_stamp`` says which frame a slot holds
(-1: none yet), so chains from ``t - k`` read slot ``(t - k) % R`` when its stamp is ``t - k``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass
class PointStates:
    """Rows = live points, in the order they were added.

    Attributes:
        ids: ``(N,) int64`` track ids.
        q_frame, q_xy: query frame ``(N,) int64`` and query position ``(N, 2)`` px.
        ring_mu, ring_v, ring_vis, ring_stamp: fused position ``(N, R, 2)``, its variance
            ``(N, R)``, visibility ``(N, R) bool`` and frame ``(N, R) int64`` per ring slot.
        cur_mu, cur_v, cur_vis: the latest fused state (where the chains start from).
        pub_mu: the published position; it differs from the fused state for hidden points
            (:mod:`~gs_tracker_ros.core.hidden_motion`).
        pub_vis: ``(N,) bool`` the published visibility: ``cur_vis``, or also visible where
            only the appearance filter hid a point that is more likely right than lost
            (``integration.filtered_visible_p_lost``).
        hidden_v: ``(N,)`` px^2 the variance the hidden-point step gave (grows while hidden).
        spread: ``(N,)`` px^2 the track model's spread of the estimate when right.
        pub_v: ``(N,)`` px^2 the published variance (:func:`~gs_tracker_ros.core.uncertainty.published_variance`).
        own_vel, own_known: the point's own velocity ``(N, 2)`` px/frame, measured while it was
            last visible, and whether it could be measured.
        last_seen: ``(N,) int64`` the last frame the point was visible on.
        path: ``(N,)`` px the published position travelled since the query (evidence).
        sim_mean: ``(N,)`` running mean of the appearance similarity to the query, 1 at the
            query (evidence, :mod:`~gs_tracker_ros.tracking.evidence`).
        p_lost: ``(N,)`` the published probability that the estimate is wrong.
    """

    ids: np.ndarray
    q_frame: np.ndarray
    q_xy: np.ndarray
    ring_mu: np.ndarray
    ring_v: np.ndarray
    ring_vis: np.ndarray
    ring_stamp: np.ndarray
    cur_mu: np.ndarray
    cur_v: np.ndarray
    cur_vis: np.ndarray
    pub_mu: np.ndarray
    pub_vis: np.ndarray
    hidden_v: np.ndarray
    spread: np.ndarray
    pub_v: np.ndarray
    own_vel: np.ndarray
    own_known: np.ndarray
    last_seen: np.ndarray
    path: np.ndarray
    sim_mean: np.ndarray
    p_lost: np.ndarray

    @classmethod
    def queries(cls, ids: np.ndarray, frame: int, xy: np.ndarray, ring: int) -> "PointStates":
        """New points placed at ``xy (N, 2)`` px on ``frame``: visible, zero variance, one ring entry."""
        n = int(len(ids))
        xy = np.asarray(xy, np.float64).reshape(n, 2)
        ring_mu = np.zeros((n, ring, 2))
        ring_mu[:, frame % ring] = xy
        ring_stamp = np.full((n, ring), -1, np.int64)
        ring_stamp[:, frame % ring] = frame
        ring_vis = np.zeros((n, ring), bool)
        ring_vis[:, frame % ring] = True
        return cls(ids=np.asarray(ids, np.int64), q_frame=np.full(n, frame, np.int64), q_xy=xy, ring_mu=ring_mu,
                   ring_v=np.zeros((n, ring)), ring_vis=ring_vis, ring_stamp=ring_stamp, cur_mu=xy.copy(),
                   cur_v=np.zeros(n), cur_vis=np.ones(n, bool), pub_mu=xy.copy(), pub_vis=np.ones(n, bool), hidden_v=np.zeros(n),
                   spread=np.zeros(n), pub_v=np.zeros(n),
                   own_vel=np.zeros((n, 2)), own_known=np.zeros(n, bool), last_seen=np.full(n, frame, np.int64),
                   path=np.zeros(n), sim_mean=np.ones(n), p_lost=np.zeros(n))

    @classmethod
    def empty(cls, ring: int) -> "PointStates":
        return cls.queries(np.zeros(0, np.int64), 0, np.zeros((0, 2)), ring)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def concat(self, other: "PointStates") -> "PointStates":
        """These rows followed by ``other``'s."""
        return PointStates(**{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                              for f in dataclasses.fields(self)})

    def select(self, rows: np.ndarray) -> "PointStates":
        """The rows ``rows`` picks (a boolean mask or indices)."""
        return PointStates(**{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)})
