"""Automatic grid seeding: keeps a grid of points dense on a moving camera (no ROS imports).

Shared by the node (parameters ``seed_grid_size`` / ``reseed_when_below``) and
``gs-tracker track --grid N --reseed F``. With ``grid_size = n > 0`` the seeder keeps about ``n x n`` grid points alive: it seeds the full
grid when it owns no live track (first image, after a reset), and re-seeds whenever fewer than
``reseed_when_below * n^2`` of its own tracks are visible: its dead (occluded / lost) tracks are
removed, and grid points are added in cells that have no visible track nearby. Queries added by
users through the service are never removed by the seeder, and the total never exceeds
``max_tracks``. New points always get new ids; a removed grid point is not re-found later (only
points the seeder does not own are kept while hidden and may be re-found when they re-enter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import grid_points
from .types import PointTracker, TrackState


@dataclass
class SeedPlan:
    """What the seeder wants done on the latest frame: remove ``remove_ids``, then add ``add_xy``."""

    remove_ids: np.ndarray
    add_xy: np.ndarray

    @property
    def empty(self) -> bool:
        return self.remove_ids.size == 0 and self.add_xy.shape[0] == 0


@dataclass
class SeedResult:
    """What :meth:`GridSeeder.reseed` did: ``removed_ids (R,)``, ``added_ids (K,)`` placed at
    ``added_xy (K, 2)`` px on the latest frame."""

    removed_ids: np.ndarray
    added_ids: np.ndarray
    added_xy: np.ndarray

    @property
    def changed(self) -> bool:
        return self.removed_ids.size > 0 or self.added_ids.size > 0


class GridSeeder:
    """Decides when and where to (re)seed grid points (see the module docstring)."""

    def __init__(self, grid_size: int = 0, reseed_when_below: float = 0.5) -> None:
        self.grid_size = int(grid_size)
        self.reseed_when_below = float(reseed_when_below)
        self._owned: set[int] = set()

    @property
    def enabled(self) -> bool:
        return self.grid_size > 0

    def reset(self) -> None:
        self._owned.clear()

    def forget(self, ids) -> None:
        """Tracks removed by someone else (service) are no longer the seeder's."""
        self._owned.difference_update(int(i) for i in np.atleast_1d(ids))

    def adopt(self, ids) -> None:
        """Record tracks added on the seeder's behalf (by :meth:`reseed` or its caller)."""
        self._owned.update(int(i) for i in np.atleast_1d(ids))

    def plan(self, ids: np.ndarray, xy: np.ndarray, visible: np.ndarray, width: int, height: int,
             max_tracks: int) -> SeedPlan:
        """Plan for the current live tracks (``ids (N,)``, ``xy (N, 2)``, ``visible (N,)``)."""
        none = SeedPlan(np.zeros(0, np.int64), np.zeros((0, 2)))
        if not self.enabled:
            return none
        ids = np.asarray(ids, np.int64).reshape(-1)
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        visible = np.asarray(visible, bool).reshape(-1)
        self._owned.intersection_update(ids.tolist())  # ids removed elsewhere (reset, service)
        owned = np.isin(ids, np.fromiter(self._owned, np.int64, len(self._owned)))
        target = self.grid_size * self.grid_size
        n_owned_visible = int((owned & visible).sum())
        if owned.any() and n_owned_visible >= self.reseed_when_below * target:
            return none
        remove = ids[owned & ~visible]
        keep_vis = visible & ~np.isin(ids, remove)
        live_after = ids.size - remove.size
        budget = max(0, int(max_tracks) - live_after)
        cand = grid_points(width, height, self.grid_size, margin=0.5 / self.grid_size)  # one per cell
        if keep_vis.any() and cand.shape[0]:
            # skip grid cells that already hold a visible track (within half a cell)
            cell = 0.5 * min(width, height) / self.grid_size
            d2 = ((cand[:, None, :] - xy[keep_vis][None, :, :]) ** 2).sum(axis=2)
            cand = cand[d2.min(axis=1) > cell * cell]
        cand = cand[:budget]
        if remove.size == 0 and cand.shape[0] == 0:
            return none
        return SeedPlan(remove, cand)

    def reseed(self, tracker: PointTracker, state: TrackState, width: int, height: int,
               max_tracks: int) -> SeedResult:
        """Plan on ``state`` (the output of ``tracker.step`` on the latest frame) and apply the plan
        to ``tracker``: remove the seeder's lost tracks, then add grid points on that frame."""
        plan = self.plan(state.ids, state.xy, state.visible, width, height, max_tracks)
        new_ids = np.zeros(0, np.int64)
        if plan.remove_ids.size:
            tracker.remove_queries(plan.remove_ids)
            self.forget(plan.remove_ids)
        if plan.add_xy.shape[0]:
            new_ids = np.asarray(tracker.add_queries(plan.add_xy), np.int64)
            self.adopt(new_ids)
        return SeedResult(plan.remove_ids, new_ids, plan.add_xy)
