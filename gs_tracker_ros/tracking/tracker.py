"""The online probabilistic point tracker (our default method)."""

from __future__ import annotations

import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..motion.base import MotionSource
from ..core.clip_buffer import ClipBuffer
from ..core.errors import InputError
from ..core.geometry import inside_image, validate_query_points
from ..core.hidden_motion import LastVisibleMotion, last_visible_motion, move_hidden_points, stays_in_view
from ..core.evidence import EvidenceModel, load_evidence_model
from ..core.integration import Fusion, Observation, chain, integrate
from ..core.median import nanmedian
from ..core.types import TrackState, track_status
from ..core.uncertainty import published_variance
from .config import TrackerConfig
from .evidence import ChainResults, FrameEvidence, chain_features, track_features
from .schedule import StageSchedule
from .state import PointStates


class ChainFilter(Protocol):
    """Optional chain filter: may invalidate chains whose landing point looks wrong.

    :meth:`filter` is a pure function of its arguments and of state its owner keeps (e.g. the
    query descriptors of the observer's bank): it stores nothing but ``chain_similarity``
    (``(N, C)``, the appearance similarity it compared for each chain, NaN where it compared none),
    which the tracker reads as evidence. After the fusion the tracker calls :meth:`refresh`,
    the one place the filter may update what it compares landings with (e.g. the refreshed
    appearance of points tracked with confidence).
    """

    chain_similarity: np.ndarray | None

    def filter(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, landing: np.ndarray,
               valid: np.ndarray) -> np.ndarray:
        """``landing (N, C, 2)`` px and ``valid (N, C)`` -> new ``valid``."""

    def refresh(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, xy: np.ndarray,
                steady: np.ndarray, chains: np.ndarray) -> None:
        """After the fusion: the points' fused positions ``xy (N, 2)`` px, ``steady (N,)`` visible
        on this frame and the previous one, ``chains (N,)`` valid chains after the filter; the
        filter may refresh what it compares landings with (its owner's state)."""


class Observer(Protocol):
    """Optional observer: an absolute position observation per point (long-term keypoints).

    On every frame after the first that has points, the tracker calls :meth:`record` (after the
    chain filter) and then, on the frames where ``frame % (relocalize.every * stride) == 0``,
    :meth:`observe`. ``stride`` is the stage schedule's (:class:`~.schedule.StageSchedule`):
    ``schedule.stride``, or the stride it adapts to ``schedule.frame_budget_ms`` when that is set.
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


@dataclass(frozen=True)
class ChainStart:
    """Where one chain column starts, for every point: the source frame ``frame (N,)``, the state
    there ``xy (N, 2)`` px and ``v (N,)`` px^2, and whether the chain runs for the point,
    ``eligible (N,)`` (a chain the schedule skips on this frame, or whose source frame is gone, has
    no eligible point)."""

    frame: np.ndarray
    xy: np.ndarray
    v: np.ndarray
    eligible: np.ndarray


@dataclass(frozen=True)
class ChainTask:
    """One motion estimate of a frame: ``source`` from ``frame`` to the new frame, for the points
    ``rows`` of chain column ``column``, which start at ``start.xy[rows]``."""

    column: int
    source: MotionSource
    frame: int
    rows: np.ndarray
    start: ChainStart

    @property
    def xy(self) -> np.ndarray:
        """``(len(rows), 2)`` px the points' states on ``frame``."""
        return self.start.xy[self.rows]


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
        name: str = "probfuse",
        track_model: EvidenceModel | None = None,
        chain_model: EvidenceModel | None = None,
    ) -> None:
        """``sources``: the motion sources ``config.sources`` names, in order (built by
        :func:`gs_tracker_ros.methods.build_sources`; use
        :func:`~gs_tracker_ros.methods.build_probabilistic_tracker` to build a whole tracker).
        ``track_model``: the evidence model of the published uncertainty, default the file
        ``uncertainty.model`` names; ``chain_model``: the chains' evidence model of
        ``integration.fusion: mixture``, default the file ``integration.chain_model`` names."""
        self.config = config.validate()
        if not sources:
            raise ValueError("ProbabilisticTracker needs at least one motion source")
        self.sources = list(sources)
        self.track_model = track_model or load_evidence_model(self.config.uncertainty.model)
        self.chain_model = None
        if self.config.integration.fusion == "mixture":
            self.chain_model = chain_model or load_evidence_model(self.config.integration.chain_model)
        self.chain_filter = chain_filter
        self.observer = observer
        self.name = name
        self.evidence: FrameEvidence | None = None  # the last frame's evidence (inspection, fitting)
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
        """Positions, visibility, the published variance (px^2, the spread when right) and
        ``p_lost`` (:mod:`~gs_tracker_ros.core.uncertainty`)."""
        p = self.points
        return TrackState(self.buffer.latest, p.ids.copy(), p.pub_mu.astype(np.float32), p.pub_v.astype(np.float32),
                          p.pub_vis.copy(), track_status(p.pub_mu, p.pub_vis, self.buffer.shape),
                          p.p_lost.astype(np.float32))

    def step(self, frame: np.ndarray) -> TrackState:
        """Track every live point onto ``frame`` (RGB uint8 ``(H, W, 3)``); the points' new state.

        In order: chain every source from the points' earlier states; drop chains that leave the
        image or land on the wrong texture (chain filter); look for the points' appearance
        (observer); weigh each chain by its evidence and fuse them with the observation (outliers
        rejected, occlusion when nothing is left); publish hidden points where their neighbours
        take them; map each point's evidence to its published spread and ``p_lost``; publish as
        visible the points only the appearance filter hid while they are more likely right than
        lost; let the filter refresh its appearance memory.
        """
        t_start = time.perf_counter()
        t = self.buffer.push(frame)
        for src in self.sources:
            src.on_frame(self.buffer, t)
        if self.num_tracks == 0 or t == 0:
            return self.state()
        p, icfg = self.points, self.config.integration
        chains = self._chains(t)
        own = self._own_motion(t)
        valid = chains.valid & stays_in_view(p.cur_mu, p.cur_vis, own, self.buffer.shape,
                                             self.config.hidden.leaving_ends_chains)[:, None]
        tracked = valid.any(axis=1)  # a chain passed its source's check (before the appearance filter)
        valid, similarity = self._filter_chains(t, chains, valid)
        observation = self._observe(t, chains, valid)
        features = chain_features(chains, valid, similarity)
        v_k, p_out = chains.v, None
        if icfg.fusion == "mixture":
            p_out, spread = self.chain_model.predict(features)
            v_k = chains.source_v + spread
        fusion = integrate(
            chains.mu, v_k, valid, chains.computed, p.cur_mu, p.cur_v,
            outlier_px=icfg.outlier_px, rho=icfg.rho,
            occluded_variance_growth=icfg.occluded_variance_growth,
            probabilistic=icfg.probabilistic, observation=observation, outlier_reference=icfg.outlier_reference,
            p_out=p_out,
        )
        was_visible = p.cur_vis
        mu, v, vis, pub_mu, pub_v = self._place_hidden_points(own, fusion.mu, fusion.v, fusion.visible)
        track = self._publish_uncertainty(t, chains, valid, fusion, similarity, pub_mu, vis)
        self._store(t, mu, v, vis, pub_mu, pub_v, self._published_visibility(vis, tracked, pub_mu))
        self.evidence = FrameEvidence(t, p.ids.copy(), chains, valid, features, track)
        if self.chain_filter is not None:
            self.chain_filter.refresh(self.buffer, t, p.ids, mu, vis & was_visible, valid.sum(axis=1))
        self.schedule.update((time.perf_counter() - t_start) * 1e3)
        return self.state()

    def _filter_chains(self, t: int, chains: ChainResults, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The chain filter (pure): drop chains that land on the wrong texture; the short chains
        of visible points that ``integration.unfiltered_max_interval`` exempts keep their
        forward-backward verdict. Returns the new ``valid`` and the similarities it compared."""
        if self.chain_filter is None:
            return valid, None
        kept = valid & self._unfiltered(t, valid.shape[1])
        valid = self.chain_filter.filter(self.buffer, t, self.points.ids, chains.mu, valid & ~kept) | kept
        return valid, self.chain_filter.chain_similarity

    def _observe(self, t: int, chains: ChainResults, valid: np.ndarray) -> Observation | None:
        """The observer records which points kept a chain, then (when scheduled) looks for each
        point's appearance around its predicted position."""
        if self.observer is None:
            return None
        p = self.points
        self.observer.record(t, p.ids, valid.any(axis=1))
        if not self.schedule.due(t, self.config.relocalize.every):
            return None
        predicted, has_chain = predicted_positions(chains.mu, valid, p.cur_mu)
        return self.observer.observe(self.buffer, t, p.ids, predicted, has_chain)

    def _publish_uncertainty(self, t: int, chains: ChainResults, valid: np.ndarray, fusion: Fusion,
                             similarity: np.ndarray | None, pub_mu: np.ndarray, vis: np.ndarray) -> dict[str, np.ndarray]:
        """Each point's evidence of this frame -> its published variance (the spread when right,
        plus what grew while hidden) and ``p_lost``, from the track model. Returns the features."""
        p = self.points
        unseen = np.where(vis, 0, t - p.last_seen)
        features, p.path, p.sim_mean = track_features(
            path=p.path, sim_mean=p.sim_mean, prev_xy=p.pub_mu, xy=pub_mu, age=t - p.q_frame, frames_unseen=unseen,
            visible=vis, fused_v=fusion.v, chains=chains, valid=valid, kept=fusion.kept, similarity=similarity,
            observed=fusion.observed)
        p.p_lost, p.spread = self.track_model.predict(features)
        return features

    def _published_visibility(self, vis: np.ndarray, tracked: np.ndarray, pub_mu: np.ndarray) -> np.ndarray:
        """``(N,) bool`` the visibility published: the fused one, and also the points that only the
        appearance filter hid (a chain passed its source's check, ``tracked``) while their
        ``p_lost`` is below ``integration.filtered_visible_p_lost``, where their published
        position ``pub_mu`` lies in the image."""
        reveal = tracked & (self.points.p_lost < self.config.integration.filtered_visible_p_lost)
        return vis | (reveal & inside_image(pub_mu, self.buffer.shape))

    def _store(self, t: int, mu: np.ndarray, v: np.ndarray, vis: np.ndarray, pub_mu: np.ndarray,
               pub_v: np.ndarray, pub_vis: np.ndarray) -> None:
        """Frame ``t``'s fused and published states into the points' ring and current state."""
        p = self.points
        slot = t % self._ring
        p.ring_mu[:, slot], p.ring_v[:, slot], p.ring_vis[:, slot], p.ring_stamp[:, slot] = mu, v, vis, t
        p.pub_v = published_variance(p.spread, pub_v, pub_vis, p.pub_v, p.hidden_v)
        p.cur_mu, p.pub_mu, p.cur_v, p.hidden_v, p.cur_vis, p.pub_vis = mu, pub_mu, v, pub_v, vis, pub_vis

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
        follows the neighbours. Returns ``(mu, v, visible, published mu, hidden variance)``, all
        ``(N, ...)`` px / px^2 (the hidden variance grows while a point is hidden).
        """
        cfg = self.config.hidden
        growth = self.config.integration.occluded_variance_growth
        p = self.points
        pub_mu, pub_v = move_hidden_points(p.pub_mu, p.hidden_v, p.cur_vis, mu, v, vis, cfg, growth, own)
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

    def _chain_starts(self, t: int) -> list[ChainStart]:
        """Where each chain column of one source starts on frame ``t`` (columns as
        :meth:`_column_intervals`)."""
        icfg = self.config.integration
        p = self.points
        r = self._ring
        n = self.num_tracks
        cols = []
        for k in icfg.intervals:
            s = t - k
            src = np.full(n, s, np.int64)
            if s < 0 or s not in self.buffer or not self.schedule.runs_chain(t, k):
                cols.append(ChainStart(src, np.zeros((n, 2)), np.zeros(n), np.zeros(n, bool)))
                continue
            slot = s % r
            ok = (p.q_frame <= s) & (p.ring_stamp[:, slot] == s)
            if icfg.chain_from_occluded:  # occluded states, but never from outside the image
                ok &= p.ring_vis[:, slot] | inside_image(p.ring_mu[:, slot], self.buffer.shape)
            else:
                ok &= p.ring_vis[:, slot]
            cols.append(ChainStart(src, p.ring_mu[:, slot], p.ring_v[:, slot], ok))
        if icfg.query_chain:
            in_buf = np.array([int(q) in self.buffer for q in p.q_frame], bool) if n else np.zeros(0, bool)
            dup = np.isin(t - p.q_frame, np.asarray(icfg.intervals))
            ok = in_buf & ~dup & (p.q_frame < t)
            cols.append(ChainStart(p.q_frame.copy(), p.q_xy, np.zeros(n), ok))
        return cols

    def _chains(self, t: int) -> ChainResults:
        """Chain every source from the points' states ``k`` frames ago (the long intervals as
        scheduled) and from their query frames: one column per (source, interval)."""
        cols = self._chain_starts(t)
        n = self.num_tracks
        intervals = self._column_intervals()
        dense = np.array([src.dense for src in self.sources for _ in cols], bool)
        out = ChainResults.empty(n, len(cols) * len(self.sources), dense)
        tasks: list[ChainTask] = []  # in column order
        col = 0
        for source in self.sources:
            allowed = getattr(source, "intervals", None)  # None: every chain
            for start, k in zip(cols, intervals):
                if allowed is not None and k not in allowed:
                    col += 1
                    continue
                for s in np.unique(start.frame[start.eligible]):
                    rows = np.flatnonzero(start.eligible & (start.frame == s))
                    tasks.append(ChainTask(col, source, int(s), rows, start))
                col += 1
        for task, est in zip(tasks, self._estimate(tasks, t)):
            rows, col, v_s = task.rows, task.column, task.start.v[task.rows]
            mu_c, v_c = chain(task.xy, v_s, est.displacement, est.variance, self.config.integration.motion_std_ratio)
            out.mu[rows, col] = mu_c
            out.v[rows, col] = v_c
            out.valid[rows, col] = est.valid
            out.computed[rows, col] = True
            out.source_xy[rows, col] = task.xy
            out.source_v[rows, col] = v_s
            out.fb[rows, col] = est.fb_error
            out.interval[rows, col] = t - task.frame
        return out

    def _estimate(self, tasks: list[ChainTask], t: int) -> list:
        """The motion estimates of ``tasks`` (see :meth:`_chains`), in order. A source that batches
        (``source.batches``, e.g. LK with ``lk.backend: batched``) gets all its tasks of the frame in
        one ``estimate_many`` call; the others run on ``chain_workers`` threads when that is above 1
        and every source is thread-safe, else one after the other. Each estimate depends only on its
        own frame pair and points, so all of these give the same numbers."""
        out: list = [None] * len(tasks)
        single = []
        for source in self.sources:
            mine = [i for i, task in enumerate(tasks) if task.source is source]
            if mine and source.batches:
                pairs = [(tasks[i].frame, t, tasks[i].xy) for i in mine]
                for i, est in zip(mine, source.estimate_many(self.buffer, pairs, [tasks[i].rows for i in mine])):
                    out[i] = est
            else:
                single += mine

        def run(i):
            task = tasks[i]
            return task.source.estimate(self.buffer, task.frame, t, task.xy)

        if self.chain_workers <= 1 or len(single) < 2 or not all(src.thread_safe for src in self.sources):
            ests = [run(i) for i in single]
        else:
            if self._pool is None or self._pool_size != self.chain_workers:
                if self._pool is not None:
                    self._pool.shutdown(wait=True)
                self._pool = ThreadPoolExecutor(max_workers=self.chain_workers, thread_name_prefix="chains")
                self._pool_size = self.chain_workers
            ests = list(self._pool.map(run, single))
        for i, est in zip(single, ests):
            out[i] = est
        return out
