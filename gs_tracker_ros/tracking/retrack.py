"""Points picked on an earlier image, carried to the most recent one.

A detector that ran on a delayed image gives points of that image; the online tracker only
accepts queries on its most recent frame. :class:`FrameHistory` keeps the last frames a tracker
was given (keyed by a caller's stamp) and :class:`QueryCarrier` tracks the points with a second
tracker of the same kind from the picked frame through the later ones, so that they can be
handed over to the first tracker as queries of its most recent frame.

Plain Python and numpy (the ROS node's ``~/add_queries`` with a stamp is one user); nothing
here locks: the caller serialises access to the history it shares with its tracker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..core.types import PointTracker


@dataclass(frozen=True)
class Frame:
    """One frame given to the tracker: its sequence number since the history was created, the
    caller's stamp (ns), the RGB image and an opaque ``meta`` (the node keeps the ROS header)."""

    seq: int
    stamp_ns: int
    image: np.ndarray
    meta: object = None

    @property
    def shape_hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


class FrameHistory:
    """The frames given to a tracker since its last reset: the most recent one always, and up to
    ``capacity`` of them for :meth:`find` (0: stamps are looked up for nothing but the most
    recent frame). :meth:`clear` goes with the tracker's reset; :attr:`generation` counts the
    clears, so that work that spans one can be refused."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        self._frames: deque[Frame] = deque(maxlen=max(1, self.capacity))
        self._seq = 0
        self.generation = 0

    def record(self, stamp_ns: int, image: np.ndarray, meta: object = None) -> Frame:
        """The frame just given to the tracker."""
        self._seq += 1
        frame = Frame(self._seq, int(stamp_ns), image, meta)
        self._frames.append(frame)
        return frame

    def clear(self) -> None:
        """The tracker was reset: forget every frame."""
        self._frames.clear()
        self.generation += 1

    @property
    def latest(self) -> Frame | None:
        """The most recent frame (None before the first one or after :meth:`clear`)."""
        return self._frames[-1] if self._frames else None

    def __len__(self) -> int:
        return len(self._frames)

    def find(self, stamp_ns: int) -> Frame | None:
        """The frame stamped ``stamp_ns`` among those kept (the latest if several share it)."""
        for frame in reversed(self._frames):
            if frame.stamp_ns == stamp_ns:
                return frame
        return None

    def after(self, seq: int) -> list[Frame]:
        """The kept frames newer than sequence number ``seq``, oldest first."""
        return [f for f in self._frames if f.seq > seq]

    def stamp_span(self) -> tuple[int, int] | None:
        """Stamps (ns) of the oldest and the newest kept frame; None when empty."""
        return (self._frames[0].stamp_ns, self._frames[-1].stamp_ns) if self._frames else None


class QueryCarrier:
    """Points placed on ``start`` and tracked forward by a tracker of their own.

    ``make_tracker`` builds a fresh tracker (the same method and config as the tracker the points
    are meant for, so that they move the same way); the carrier steps it on ``start``, adds the
    points there, and :meth:`follow` steps it through later frames. :meth:`positions` is where
    the points are on the last frame followed.
    """

    def __init__(self, make_tracker: Callable[[], PointTracker], start: Frame, xy: np.ndarray) -> None:
        self._xy = np.asarray(xy, np.float64).reshape(-1, 2)
        self._tracker = make_tracker()
        self._tracker.step(start.image)
        self._ids = np.asarray(self._tracker.add_queries(self._xy), np.int64)
        self.seq = start.seq  # the last frame followed
        self.steps = 0
        self._state = None

    def follow(self, frames: Iterable[Frame]) -> None:
        """Step through ``frames`` (those after :attr:`seq`, oldest first; older ones are skipped)."""
        for frame in frames:
            if frame.seq <= self.seq:
                continue
            self._state = self._tracker.step(frame.image)
            self.seq = frame.seq
            self.steps += 1

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """``(xy (N, 2) float64 px, hidden (N,) bool)`` on the last frame followed, in the order
        the points were given; ``hidden``: judged occluded there (then ``xy`` is where the
        tracker predicts them). Before any :meth:`follow`, the points as given."""
        if self._state is None:
            return self._xy.copy(), np.zeros(len(self._xy), bool)
        row = {int(i): k for k, i in enumerate(self._state.ids)}
        missing = [int(i) for i in self._ids if int(i) not in row]
        if missing:  # a tracker never drops points by itself; a broken one must not hand over garbage
            raise RuntimeError(f"the carrying tracker lost track id(s) {missing[:10]}")
        order = np.array([row[int(i)] for i in self._ids], np.int64)
        return self._state.xy[order].astype(np.float64), ~np.asarray(self._state.visible, bool)[order]
