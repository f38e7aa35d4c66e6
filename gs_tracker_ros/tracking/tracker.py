"""The online probabilistic point tracker (our default method)."""

from __future__ import annotations

import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, Sequence

import numpy as np

from ..motion.base import MotionSource
from ..core.clip_buffer import ClipBuffer
from ..core.errors import InputError
from ..core.geometry import inside_image, validate_query_points
from ..core.hidden_motion import LastVisibleMotion, last_visible_motion, move_hidden_points, stays_in_view
from ..core.integration import Observation, chain, integrate
from ..core.median import nanmedian
from ..core.types import TrackState, track_status
from ..core.uncertainty import grow_drift, published_variance
from .config import TrackerConfig
from .schedule import StageSchedule
from .state import PointStates


class ChainFilter(Protocol):
    """Optional step 2 filter: may invalidate chains whose landing point looks wrong.

    :meth:`filter` is a pure function of its arguments and of state its owner keeps (e.g. the
    query descriptors of the observer's bank): it stores nothing, so replacing or removing it
    changes only which chains stay valid. After the fusion the tracker calls :meth:`refresh`,
    the one place the filter may update what it compares landings with (e.g. the refreshed
    appearance of points tracked with confidence).
    """

    def filter(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, landing: np.ndarray,
               valid: np.ndarray) -> np.ndarray:
        """``landing (N, C, 2)`` px and ``valid (N, C)`` -> new ``valid``."""

    def refresh(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, xy: np.ndarray,
                steady: np.ndarray, chains: np.ndarray) -> None:
        """After the fusion: the points' fused positions ``xy (N, 2)`` px, ``steady (N,)`` visible
        on this frame and the previous one, ``chains (N,)`` valid chains after the filter; the
        filter may refresh what it compares landings with (its owner's state)."""


class Observer(Protocol):
    """Optional step 5 observer: an absolute position observation per point (long-term keypoints).

    Per frame the tracker calls :meth:`record` (every frame, after the chain filter) and then,
    every ``relocalize.every`` frames, :meth:`observe`.
    """

    def add(self, buffer: ClipBuffer, frame: int, ids: np.ndarray, xy: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def reset(self) -> None: ...

    def record(self, frame: int, ids: np.ndarray, has_chain: np.ndarray) -> None:
        """Which points kept a valid chain on ``frame`` after the filter (``has_chain (N,)``), so the
        observer can count how long each point has gone without one."""

    def observe(self, buffer: ClipBuffer, frame: int, ids: np.ndarray, prior_xy: np.ndarray,
                prior_visible: np.ndarray) -> Observation:
        """Observations on ``frame`` near ``prior_xy (N, 2)`` px, the points' predicted positions
        (:func:`predicted_positions`); ``prior_visible (N,)``: a valid chain supports the prediction."""


def predicted_positions(mu_k: np.ndarray, valid: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each point is expected on the new frame before any observation: the coordinate-wise
    median of its valid chains' landing points ``mu_k (N, C, 2)`` px, else its ``previous (N, 2)``
    position. Returns ``(xy (N, 2), has_valid_chain (N,))``."""
    has = valid.any(axis=1)
    out = np.array(previous, dtype=np.float64, copy=True)
    if has.any():
        out[has] = nanmedian(np.where(valid[has][..., None], mu_k[has], np.nan), axis=1)
    return out, has


class ProbabilisticTracker:
    """Online Tracking-Any-Point by forward probabilistic integration of motion chains.

    For every new frame t and live point, each motion source is chained from the point's
    state on frames ``t - k`` (k in ``config.integration.intervals``) and from its query frame;
    chains are filtered, outliers rejected and the rest fused by inverse variance
    (:mod:`~gs_tracker_ros.core.integration`). A point with no valid chain is occluded and
    moves with its visible neighbours (:mod:`~gs_tracker_ros.core.hidden_motion`); one whose
    estimate leaves the image is out of view (:class:`~gs_tracker_ros.core.types.TrackStatus`).

    Memory is bounded: the buffer holds ``max(intervals) + 1`` frames plus at most
    ``max_query_frames`` pinned query frames; each point keeps a ring of its last states.
    """

    def __init__(
        self,
        config: TrackerConfig,
        sources: Sequence[MotionSource],
        chain_filter: ChainFilter | None = None,
        observer: Observer | None = None,
        name: str = "protrack",
    ) -> None:
        """``sources``: the motion sources ``config.sources`` names, in order (built by
        :func:`gs_tracker_ros.methods.build_sources`; use
        :func:`~gs_tracker_ros.methods.build_probabilistic_tracker` to build a whole tracker)."""
        self.config = config.validate()
        if not sources:
            raise ValueError("ProbabilisticTracker needs at least one motion source")
        self.sources = list(sources)
        self.chain_filter = chain_filter
        self.observer = observer
        self.name = name
        # Threads the motion chains of a frame run on (1: one after the other, the default). Up to
        # the number of CPU cores, >1 lets OpenCV's LK calls of different chains (pyramids
        # included) overlap; the tracked positions are the same either way.
        self.chain_workers = 1
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self.buffer = ClipBuffer(self.config.buffer_capacity)
        self._ring = self.config.buffer_capacity
        self._next_id = 0
        self._query_frames: "OrderedDict[int, int]" = OrderedDict()  # pinned frame -> live points
        self.points = PointStates.empty(self._ring)  # one row per live point
        self.schedule = StageSchedule(self.config.schedule)  # when the long chains and the observer run

    @property
    def num_tracks(self) -> int:
        return int(self.points.ids.shape[0])

    @property
    def frame_index(self) -> int:
        return self.buffer.latest

    # ------------------------------------------------------------------ queries
    def add_queries(self, xy: np.ndarray) -> np.ndarray:
        """Place queries on the most recent frame; returns their new ids."""
        t = self.buffer.latest
        if t < 0:
            raise InputError("cannot add queries before the first frame was given to the tracker")
        pts = validate_query_points(xy, self.buffer.shape)
        n = pts.shape[0]
        if n == 0:
            return np.zeros(0, np.int64)
        if self.num_tracks + n > self.config.max_tracks:
            raise InputError(f"adding {n} queries would exceed max_tracks={self.config.max_tracks} "
                             f"({self.num_tracks} live)")
        new_ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        self.points = self.points.concat(PointStates.queries(new_ids, t, pts, self._ring))
        self._pin_query_frame(t, n)
        if self.observer is not None:
            self.observer.add(self.buffer, t, new_ids, pts)
        return new_ids

    def _pin_query_frame(self, t: int, n: int) -> None:
        if not self.config.integration.query_chain:
            return
        if t in self._query_frames:
            self._query_frames[t] += n
            return
        self.buffer.pin(t)
        self._query_frames[t] = n
        while len(self._query_frames) > self.config.integration.max_query_frames:
            old, _ = self._query_frames.popitem(last=False)
            self.buffer.unpin(old)

    def remove_queries(self, ids: np.ndarray) -> None:
        ids = np.atleast_1d(np.asarray(ids, np.int64))
        missing = np.setdiff1d(ids, self.points.ids)
        if missing.size:
            raise KeyError(f"unknown track id(s): {missing[:10].tolist()}")
        drop = np.isin(self.points.ids, ids)
        for frame in self.points.q_frame[drop]:
            frame = int(frame)
            if frame in self._query_frames:
                self._query_frames[frame] -= 1
                if self._query_frames[frame] <= 0:
                    del self._query_frames[frame]
                    self.buffer.unpin(frame)
        self.points = self.points.select(~drop)
        if self.observer is not None:
            self.observer.remove(ids)

    def reset(self) -> None:
        self.buffer.clear()
        self._query_frames.clear()
        self.points = PointStates.empty(self._ring)
        for src in self.sources:
            src.reset()
        if self.observer is not None:
            self.observer.reset()
        self.schedule.reset()

    # ------------------------------------------------------------------ tracking
    def state(self) -> TrackState:
        """Positions, visibility and the published variance (fusion variance + drift^2, px^2)."""
        p = self.points
        variance = published_variance(p.pub_v, p.drift)
        return TrackState(self.buffer.latest, p.ids.copy(), p.pub_mu.astype(np.float32), variance.astype(np.float32),
                          p.cur_vis.copy(), track_status(p.pub_mu, p.cur_vis, self.buffer.shape))

    def step(self, frame: np.ndarray) -> TrackState:
        """Track every live point onto ``frame`` (RGB uint8 ``(H, W, 3)``); the points' new state."""
        t_start = time.perf_counter()
        t = self.buffer.push(frame)
        for src in self.sources:
            src.on_frame(self.buffer, t)
        if self.num_tracks == 0 or t == 0:
            return self.state()
        p, icfg = self.points, self.config.integration
        # 1. chains: every source from every interval's state (the long ones as scheduled), (N, C)
        mu_k, v_k, valid, computed = self._chains(t)
        own = self._own_motion(t)
        # out of view, or leaving the image: only the re-localisation brings it back (hidden_motion)
        valid &= stays_in_view(p.cur_mu, p.cur_vis, own, self.buffer.shape,
                               self.config.hidden.leaving_ends_chains)[:, None]
        # 2. chain filter (pure): drop chains that land on the wrong texture (the unfiltered
        #    short chains of visible points keep their forward-backward verdict)
        if self.chain_filter is not None:
            kept = valid & self._unfiltered(t, valid.shape[1])
            valid = self.chain_filter.filter(self.buffer, t, p.ids, mu_k, valid & ~kept) | kept
        was_visible = p.cur_vis
        # 5. observer: record which points kept a chain, then observe around the predicted positions
        observation = None
        if self.observer is not None:
            self.observer.record(t, p.ids, valid.any(axis=1))
            if self.schedule.due(t, self.config.relocalize.every):
                predicted, has_chain = predicted_positions(mu_k, valid, p.cur_mu)
                observation = self.observer.observe(self.buffer, t, p.ids, predicted, has_chain)
        # 3, 4, 6. outlier rejection, inverse-variance fusion with the observation, occlusion
        mu, v, vis = integrate(
            mu_k, v_k, valid, computed, p.cur_mu, p.cur_v,
            outlier_px=icfg.outlier_px, rho=icfg.rho,
            occluded_variance_growth=icfg.occluded_variance_growth,
            probabilistic=icfg.probabilistic, observation=observation, outlier_reference=icfg.outlier_reference,
        )
        # hidden points: published where their neighbours take them
        mu, v, vis, pub_mu, pub_v = self._place_hidden_points(own, mu, v, vis)
        self._store(t, mu, v, vis, pub_mu, pub_v)
        # 2'. the filter's appearance refresh from the points tracked with confidence
        if self.chain_filter is not None:
            self.chain_filter.refresh(self.buffer, t, p.ids, mu, vis & was_visible, valid.sum(axis=1))
        self.schedule.update((time.perf_counter() - t_start) * 1e3)
        return self.state()

    def _store(self, t: int, mu: np.ndarray, v: np.ndarray, vis: np.ndarray, pub_mu: np.ndarray,
               pub_v: np.ndarray) -> None:
        """Frame ``t``'s fused and published states into the points' ring and current state."""
        p = self.points
        slot = t % self._ring
        p.ring_mu[:, slot], p.ring_v[:, slot], p.ring_vis[:, slot], p.ring_stamp[:, slot] = mu, v, vis, t
        p.drift = grow_drift(p.drift, p.pub_mu, pub_mu, self.config.uncertainty)
        p.cur_mu, p.pub_mu, p.cur_v, p.pub_v, p.cur_vis = mu, pub_mu, v, pub_v, vis

    def _own_motion(self, t: int) -> LastVisibleMotion:
        """Each point's own velocity, measured from its ring while it is visible and kept as it was
        while it is hidden (the ring is short: its visible steps would roll out of it)."""
        p = self.points
        own = last_visible_motion(p.ring_mu, p.ring_vis, p.ring_stamp, t, self.config.hidden.velocity_frames)
        seen = p.cur_vis  # visible on frame t - 1
        p.own_vel = np.where(seen[:, None], own.velocity, p.own_vel)
        p.own_known = np.where(seen, own.known, p.own_known)
        p.last_seen = np.where(seen, t - 1, p.last_seen)
        return LastVisibleMotion(p.own_vel.copy(), p.own_known.copy(), t - p.last_seen)

    def _place_hidden_points(self, own: LastVisibleMotion, mu: np.ndarray, v: np.ndarray, vis: np.ndarray):
        """Hidden-point step: a point without a measurement is published where the median motion
        of its visible neighbours (plus its own fading relative motion ``own``) takes it, and its
        variance grows (:mod:`.hidden_motion`); a point whose estimate lies outside the image is
        not visible (status ``OUT_OF_VIEW``).

        The chains of the next frames start from that position for a point it takes out of the
        image (and for every hidden point with ``hidden.moves_state``); otherwise from the
        fusion's best guess (the lowest-variance failed chain), and only the published position
        follows the neighbours. Returns ``(mu, v, visible, published mu, published v)``, all
        ``(N, ...)`` px / px^2.
        """
        cfg = self.config.hidden
        growth = self.config.integration.occluded_variance_growth
        p = self.points
        pub_mu, pub_v = move_hidden_points(p.pub_mu, p.pub_v, p.cur_vis, mu, v, vis, cfg, growth, own)
        # A point taken out of the image is out of view, not occluded: its state follows it
        # there so that no chain measures it until the re-localisation finds it again.
        follow = ~vis if cfg.moves_state else ~vis & ~inside_image(pub_mu, self.buffer.shape)
        mu, v = np.where(follow[:, None], pub_mu, mu), np.where(follow, pub_v, v)
        return mu, v, vis & inside_image(mu, self.buffer.shape), pub_mu, pub_v

    def _column_intervals(self) -> list[int | None]:
        """The interval of each chain column of one source, in column order: the ladder, then
        None for the query chain (every source has these columns, one source after the other)."""
        icfg = self.config.integration
        return list(icfg.intervals) + ([None] if icfg.query_chain else [])

    def _unfiltered(self, t: int, num_columns: int) -> np.ndarray:
        """``(N, C)`` chains exempt from the chain filter: intervals up to
        ``integration.unfiltered_max_interval``, from a visible state, of points visible on frame t - 1
        (only meaningful where the chain is valid, i.e. its source state is frame t - k's)."""
        limit = self.config.integration.unfiltered_max_interval
        p = self.points
        out = np.zeros((self.num_tracks, num_columns), bool)
        if limit <= 0:
            return out
        for col, k in enumerate(self._column_intervals() * len(self.sources)):
            if k is not None and k <= limit:
                out[:, col] = p.cur_vis & p.ring_vis[:, (t - k) % self._ring]
        return out

    def _chain_sources(self, t: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per chain column: (source frame (N,), mu_s (N,2), v_s (N,), eligible (N,)); a chain the
        schedule skips on frame ``t`` has no eligible point, as one whose source frame is gone."""
        icfg = self.config.integration
        p = self.points
        r = self._ring
        n = self.num_tracks
        cols = []
        for k in icfg.intervals:
            s = t - k
            src = np.full(n, s, np.int64)
            if s < 0 or s not in self.buffer or not self.schedule.runs_chain(t, k):
                cols.append((src, np.zeros((n, 2)), np.zeros(n), np.zeros(n, bool)))
                continue
            slot = s % r
            ok = (p.q_frame <= s) & (p.ring_stamp[:, slot] == s)
            if icfg.chain_from_occluded:  # occluded states, but never from outside the image
                ok &= p.ring_vis[:, slot] | inside_image(p.ring_mu[:, slot], self.buffer.shape)
            else:
                ok &= p.ring_vis[:, slot]
            cols.append((src, p.ring_mu[:, slot], p.ring_v[:, slot], ok))
        if icfg.query_chain:
            in_buf = np.array([int(q) in self.buffer for q in p.q_frame], bool) if n else np.zeros(0, bool)
            dup = np.isin(t - p.q_frame, np.asarray(icfg.intervals))
            ok = in_buf & ~dup & (p.q_frame < t)
            cols.append((p.q_frame.copy(), p.q_xy, np.zeros(n), ok))
        return cols

    def _chains(self, t: int):
        cols = self._chain_sources(t)
        n = self.num_tracks
        c = len(cols) * len(self.sources)
        mu_k = np.zeros((n, c, 2))
        v_k = np.full((n, c), np.inf)
        valid = np.zeros((n, c), bool)
        computed = np.zeros((n, c), bool)
        tasks = []  # (column, source, source frame, rows, mu_s, v_s), in column order
        col = 0
        col_interval = self._column_intervals()
        for source in self.sources:
            allowed = getattr(source, "intervals", None)  # None: every chain
            for (src_frame, mu_s, v_s, eligible), k in zip(cols, col_interval):
                if allowed is not None and k not in allowed:
                    col += 1
                    continue
                for s in np.unique(src_frame[eligible]):
                    tasks.append((col, source, int(s), np.flatnonzero(eligible & (src_frame == s)), mu_s, v_s))
                col += 1
        for (col, _, _, rows, mu_s, v_s), est in zip(tasks, self._estimate(tasks, t)):
            mu_c, v_c = chain(mu_s[rows], v_s[rows], est.displacement, est.variance,
                             self.config.integration.motion_std_ratio)
            mu_k[rows, col] = mu_c
            v_k[rows, col] = v_c
            valid[rows, col] = est.valid
            computed[rows, col] = True
        return mu_k, v_k, valid, computed

    def _estimate(self, tasks: list, t: int) -> list:
        """The motion estimates of ``tasks`` (see :meth:`_chains`), in order: on ``chain_workers``
        threads when that is above 1 and every source is thread-safe, else one after the other.
        Each estimate depends only on its own frame pair and points, so both give the same numbers."""
        def run(task):
            _, source, s, rows, mu_s, _ = task
            return source.estimate(self.buffer, s, t, mu_s[rows])

        if self.chain_workers <= 1 or len(tasks) < 2 or not all(src.thread_safe for src in self.sources):
            return [run(task) for task in tasks]
        if self._pool is None or self._pool_size != self.chain_workers:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(max_workers=self.chain_workers, thread_name_prefix="chains")
            self._pool_size = self.chain_workers
        return list(self._pool.map(run, tasks))
