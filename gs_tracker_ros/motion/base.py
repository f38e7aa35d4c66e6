"""The motion-source interface: how far do points move between two buffered frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.clip_buffer import ClipBuffer


@dataclass(frozen=True)
class MotionEstimate:
    """Motion of N points from frame a to frame b.

    Attributes:
        displacement: ``(N, 2) float32`` px, so that the point lands at ``p + displacement``.
        variance: ``(N,) float32`` px^2, isotropic uncertainty of the displacement.
        valid: ``(N,) bool`` False where the source cannot vouch for the point (occluded,
            left the image, failed consistency check).
        fb_error: ``(N,) float32`` px, the source's forward-backward residual (how far the point
            lands from where it started after going a -> b -> a), evidence of how far to trust
            it; NaN where the source measures none (``None``: all NaN). ``inf`` where a pass failed.
    """

    displacement: np.ndarray
    variance: np.ndarray
    valid: np.ndarray
    fb_error: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.displacement.shape[0]
        assert self.displacement.shape == (n, 2), self.displacement.shape
        assert self.variance.shape == (n,), self.variance.shape
        assert self.valid.shape == (n,), self.valid.shape
        if self.fb_error is None:
            object.__setattr__(self, "fb_error", np.full(n, np.nan, np.float32))
        assert self.fb_error.shape == (n,), self.fb_error.shape


class MotionSource(ABC):
    """One way of estimating point motion between frames held in a :class:`ClipBuffer`.

    Implementations share dense work per frame pair (a flow field, an encoder pass) between all
    points and between calls, and must only use frames still in the buffer.
    """

    #: ``estimate`` may run for several frame pairs at once from different threads (it only reads
    #: the buffer's cached per-frame data, prepared in :meth:`on_frame`, and holds no other state).
    thread_safe: bool = False
    name: str = "motion"
    #: chain intervals (frames) this source is used for; None = every chain of the ladder and the
    #: query chain. A dense source can limit itself to the short chains, whose fields it can afford.
    intervals: tuple[int, ...] | None = None
    #: :meth:`estimate_many` does the frame pairs of one frame together (faster than one
    #: :meth:`estimate` each): the tracker then hands it every chain of a frame in one call.
    batches: bool = False
    #: the source computes its motion over the whole frame pair (a flow field, an encoder pass)
    #: rather than per point; one of the evidence features of its chains (tracking/evidence.py).
    dense: bool = True

    def on_frame(self, buffer: ClipBuffer, index: int) -> None:  # optional hook
        """Called once after frame ``index`` was pushed; may precompute per-frame data."""

    @abstractmethod
    def estimate(self, buffer: ClipBuffer, a: int, b: int, points: np.ndarray) -> MotionEstimate:
        """Motion from frame ``a`` to frame ``b`` of ``points`` ``(N, 2)`` px given in frame a."""

    def estimate_many(self, buffer: ClipBuffer, pairs: Sequence[tuple[int, int, np.ndarray]],
                      point_ids: Sequence[np.ndarray] | None = None) -> list[MotionEstimate]:
        """:meth:`estimate` of every ``(a, b, points)`` in ``pairs``, in order. This default makes one
        call per pair; a source with ``batches = True`` overrides it with one pass over all pairs
        (the same numbers as its :meth:`estimate`, unless it uses ``point_ids``: the tracker's index
        of each point of each pair, with which it may compare the chains of one point)."""
        return [self.estimate(buffer, a, b, points) for a, b, points in pairs]

    def reset(self) -> None:  # optional hook
        """Drop any cached state (called when the tracker resets)."""
