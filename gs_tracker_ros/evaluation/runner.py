"""Drive any :class:`~gs_tracker_ros.core.types.PointTracker` over a clip and score it.

One code path for the CLI, the benchmarks and the rosbag replay: frames go through ``step()``
one at a time (timed), and queries are placed right after ``step()`` of their frame, exactly as
a live stream would deliver them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.types import PointTracker, TrackState, TrackStatus
from .badja import TrackingSequence
from .calibration import (calibration_counts, coverage_from_counts, error_vs_sigma, scored_errors,
                          sum_calibration_counts)
from .metrics import SCORE_KEYS, aggregate, badja_scores, scored_pairs, seg_threshold_px


@dataclass
class TrackerRun:
    """Everything a tracker produced on one clip, points in query order.

    Query order: by query frame ascending, then the row order within ``queries_by_frame[f]``;
    points added by an ``on_step`` callback (re-seeding) follow in the order they were added.

    Attributes:
        method: the tracker's ``name``.
        ids: ``(N,) int64`` ids the tracker gave the queries.
        query_frame: ``(N,) int64`` frame each query was placed on.
        query_xy: ``(N, 2) float32`` query positions in px.
        xy: ``(N, T, 2) float32`` positions in px; NaN on frames before the query frame or where
            the tracker did not report the point (e.g. after it was removed).
        visible: ``(N, T) bool`` predicted visibility (False before the query frame).
        variance: ``(N, T) float32`` px^2; NaN before the query frame; 0 on the query frame.
        status: ``(N, T) uint8`` :class:`~gs_tracker_ros.core.types.TrackStatus` codes
            (``NOT_TRACKED`` = 0 where ``xy`` is NaN).
        p_lost: ``(N, T) float32`` the tracker's probability that the position is wrong (NaN where
            it does not estimate one, and before the query frame; 0 on the query frame).
        step_ms: ``(T,) float64`` wall-clock milliseconds of each ``step()`` call.
    """

    method: str
    ids: np.ndarray
    query_frame: np.ndarray
    query_xy: np.ndarray
    xy: np.ndarray
    visible: np.ndarray
    variance: np.ndarray
    status: np.ndarray
    p_lost: np.ndarray
    step_ms: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.step_ms.shape[0])

    @property
    def ms_per_frame(self) -> float:
        """Median ``step()`` time in ms."""
        return float(np.median(self.step_ms)) if self.step_ms.size else float("nan")


def _check_queries(queries_by_frame: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for frame in sorted(queries_by_frame):
        q = np.asarray(queries_by_frame[frame], np.float32)
        if q.ndim != 2 or q.shape[1] != 2:
            raise InputError(f"queries for frame {frame} must have shape (M, 2), got {q.shape}")
        if int(frame) < 0:
            raise InputError(f"query frame must be >= 0, got {frame}")
        if q.shape[0]:
            out[int(frame)] = q
    return out


StepCallback = Callable[[int, TrackState], tuple[np.ndarray, np.ndarray]]


@dataclass
class _FrameRows:
    """One frame's outputs, one row per query added so far (NaN / 0 where not reported)."""

    xy: np.ndarray
    variance: np.ndarray
    status: np.ndarray
    p_lost: np.ndarray

    @staticmethod
    def empty(n: int) -> "_FrameRows":
        return _FrameRows(np.full((n, 2), np.nan, np.float32), np.full(n, np.nan, np.float32), np.zeros(n, np.uint8),
                          np.full(n, np.nan, np.float32))

    def grow(self, n: int) -> "_FrameRows":
        """These rows followed by empty ones up to ``n``."""
        extra = _FrameRows.empty(n - len(self.status))
        return _FrameRows(*(np.concatenate([getattr(self, k), getattr(extra, k)]) for k in ("xy", "variance", "status",
                                                                                          "p_lost")))


def run_tracker_on_sequence(
    tracker: PointTracker,
    frames: Iterable[np.ndarray],
    queries_by_frame: Mapping[int, np.ndarray],
    progress: Callable[[int], None] | None = None,
    on_step: StepCallback | None = None,
) -> TrackerRun:
    """Run ``tracker`` online over ``frames`` and collect its outputs.

    The tracker is ``reset()`` first. For every frame t: ``state = tracker.step(frame)`` (timed),
    then the queries of frame t (``(M, 2)`` px) are added; on frame t such a query's output is
    its query position, visible, variance 0.

    Args:
        tracker: any :class:`PointTracker`.
        frames: iterable of RGB uint8 frames (a FrameSource, a list, a (T, H, W, 3) array).
        queries_by_frame: ``{frame index: (M, 2) xy px}``.
        progress: called with the frame index after each frame.
        on_step: called as ``on_step(t, state)`` after the queries of frame t were added; it may
            add and remove queries on ``tracker`` itself (e.g. :class:`~gs_tracker_ros.core.seeding.GridSeeder`)
            and returns the ids it added and their positions ``((K,) ids, (K, 2) px)``, which get
            new rows (query frame t). A removed track's row is NaN / ``NOT_TRACKED`` from then on.

    Raises:
        InputError: malformed queries, or queries on frames the clip does not have.
    """
    queries = _check_queries(queries_by_frame)
    ids: list[int] = []
    query_frame: list[int] = []
    query_xy: list[np.ndarray] = []
    row_of_id: dict[int, int] = {}
    frames_out: list[_FrameRows] = []
    step_ms: list[float] = []

    def new_rows(t: int, new_ids: np.ndarray, xy: np.ndarray, out: _FrameRows) -> _FrameRows:
        rows = np.arange(len(ids), len(ids) + len(new_ids))
        ids.extend(int(i) for i in new_ids)
        query_frame.extend([t] * len(new_ids))
        query_xy.append(np.asarray(xy, np.float32).reshape(-1, 2))
        row_of_id.update({int(i): int(r) for i, r in zip(new_ids, rows)})
        out = out.grow(len(ids))
        out.xy[rows], out.variance[rows], out.status[rows], out.p_lost[rows] = xy, 0.0, TrackStatus.VISIBLE, 0.0
        return out

    tracker.reset()
    for t, frame in enumerate(frames):
        t0 = time.perf_counter()
        state = tracker.step(frame)
        step_ms.append((time.perf_counter() - t0) * 1e3)
        out = _FrameRows.empty(len(ids))
        if len(state):
            rows = np.array([row_of_id.get(int(i), -1) for i in state.ids], np.int64)
            known = rows >= 0
            out.xy[rows[known]] = state.xy[known]
            out.variance[rows[known]] = state.variance[known]
            out.status[rows[known]] = state.status[known]
            out.p_lost[rows[known]] = state.p_lost[known]
        if t in queries:
            q = queries[t]
            new_ids = np.asarray(tracker.add_queries(q), np.int64)
            if new_ids.shape != (len(q),):
                raise InputError(f"{tracker.name}.add_queries returned {new_ids.shape} ids for {len(q)} queries")
            out = new_rows(t, new_ids, q, out)
        if on_step is not None:
            added_ids, added_xy = on_step(t, state)
            if len(added_ids):
                out = new_rows(t, np.asarray(added_ids, np.int64), added_xy, out)
        frames_out.append(out)
        if progress is not None:
            progress(t)

    num_frames = len(step_ms)
    late = [f for f in queries if f >= num_frames]
    if late:
        raise InputError(f"queries on frame(s) {late} but the clip has only {num_frames} frames")
    n = len(ids)

    def stack(name: str, fill, shape_tail: tuple[int, ...], dtype) -> np.ndarray:
        arr = np.full((n, num_frames) + shape_tail, fill, dtype)
        for t, rows in enumerate(frames_out):
            values = getattr(rows, name)
            arr[: len(values), t] = values
        return arr

    status = stack("status", 0, (), np.uint8)
    return TrackerRun(
        method=str(getattr(tracker, "name", type(tracker).__name__)),
        ids=np.asarray(ids, np.int64),
        query_frame=np.asarray(query_frame, np.int64),
        query_xy=np.concatenate(query_xy).astype(np.float32) if query_xy else np.zeros((0, 2), np.float32),
        xy=stack("xy", np.nan, (2,), np.float32),
        visible=status == TrackStatus.VISIBLE,
        variance=stack("variance", np.nan, (), np.float32),
        status=status,
        p_lost=stack("p_lost", np.nan, (), np.float32),
        step_ms=np.asarray(step_ms, np.float64),
    )


def _query_order(seq: TrackingSequence) -> np.ndarray:
    """Indices of ``seq``'s points in the runner's query order (by frame, then point index)."""
    return np.argsort(seq.query_frame, kind="stable")


def run_on_badja_sequence(tracker: PointTracker, seq: TrackingSequence) -> tuple[TrackerRun, dict[str, Any]]:
    """Run ``tracker`` on one sequence from its queries; return the run and :func:`badja_scores`.

    The run's arrays are reordered to the sequence's point order before scoring.
    """
    if seq.frames is None:
        raise InputError(f"sequence {seq.name} has no frames to run a tracker on")
    run = run_tracker_on_sequence(tracker, seq.frames, seq.queries_by_frame())
    if run.num_frames != seq.num_frames:
        raise InputError(f"sequence {seq.name}: got {run.num_frames} frames, expected {seq.num_frames}")
    order = _query_order(seq)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    for name in ("ids", "query_frame", "query_xy", "xy", "visible", "variance", "status", "p_lost"):
        setattr(run, name, getattr(run, name)[inverse])
    return run, score_sequence(run.xy, run.visible, run.variance, seq, run.p_lost)


def score_sequence(xy: np.ndarray, visible: np.ndarray, variance: np.ndarray, seq: TrackingSequence,
                   p_lost: np.ndarray | None = None) -> dict[str, Any]:
    """:func:`badja_scores` of predictions ``xy (N, T, 2)`` px / ``visible (N, T)`` plus the
    ``"calibration"`` counts of the published ``variance (N, T)`` px^2 (one scoring for
    ``eval``, the bag replay and recorded bags)."""
    scores = badja_scores(xy, visible, seq)
    visible_pairs = scored_pairs(seq.annotated, seq.query_frame) & seq.visible
    err, sigma, p, lost = scored_errors(xy, variance, seq.tracks_xy, visible_pairs, p_lost, seg_threshold_px(seq))
    scores["calibration"] = calibration_counts(err, sigma, p, lost)
    return scores


def pool_scores(per_sequence: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pooled scores (counts summed, see :func:`aggregate`) with the calibration counts pooled too."""
    pooled = aggregate(per_sequence)
    pooled["calibration"] = sum_calibration_counts([s["calibration"] for s in per_sequence])
    return pooled


def summarize_scores(scores: Mapping[str, Any], ms: float) -> dict[str, Any]:
    """The JSON-ready row of one sequence (or the pool): the five scores, the calibration
    fractions and error-vs-sigma curve (``error_vs_sigma``), ``ms_per_frame`` and the counts
    behind them."""
    out: dict[str, Any] = {k: float(scores[k]) for k in SCORE_KEYS}
    out.update(coverage_from_counts(scores["calibration"]))
    out["ms_per_frame"] = float(ms)
    out["counts"] = scores["counts"]
    out["calibration"] = scores["calibration"]
    out["error_vs_sigma"] = error_vs_sigma(scores["calibration"]["pairs"])
    if "point_counts" in scores:  # one sequence (the pool has none): for paired resampling of points
        out["point_counts"] = scores["point_counts"]
    return out


def _line(name: str, s: Mapping[str, Any]) -> str:
    parts = [f"{k}={100 * s[k]:.1f}" for k in SCORE_KEYS]
    return (f"{name}: " + " ".join(parts) + f" cover2sigma={100 * s['coverage_2sigma']:.1f}"
            f" ms/frame={s['ms_per_frame']:.2f}")


def evaluate_badja(
    tracker_factory: Callable[[], PointTracker],
    sequences: Sequence[TrackingSequence],
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a tracker on BADJA-format sequences; JSON-ready result.

    A fresh tracker from ``tracker_factory()`` runs on each sequence. Returns::

        {"method": name,
         "overall":   {delta_seg, delta_3px, delta_avg, OA, AJ, coverage_1sigma, coverage_2sigma,
                       median_sigma_px, median_error_px, ms_per_frame, counts, calibration},
         "sequences": {seq name: {same keys}}}

    Scores are fractions in [0, 1]. ``overall`` pools all scored (point, frame) pairs of all
    sequences (:func:`~gs_tracker_ros.evaluation.metrics.aggregate`, mode "pooled");
    ``ms_per_frame`` is the median ``step()`` time (over all frames of all sequences for
    ``overall``). With ``progress`` one line per sequence is printed to stderr.
    """
    if not sequences:
        raise InputError("no sequences to evaluate")
    method = None
    per_seq: dict[str, dict[str, Any]] = {}
    all_scores: list[dict[str, Any]] = []
    all_ms: list[np.ndarray] = []
    for seq in sequences:
        tracker = tracker_factory()
        method = method or str(getattr(tracker, "name", type(tracker).__name__))
        run, scores = run_on_badja_sequence(tracker, seq)
        per_seq[seq.name] = summarize_scores(scores, run.ms_per_frame)
        all_scores.append(scores)
        all_ms.append(run.step_ms)
        if progress:
            print(f"[{method}] " + _line(seq.name, per_seq[seq.name]), file=sys.stderr, flush=True)
    overall = summarize_scores(pool_scores(all_scores), float(np.median(np.concatenate(all_ms))))
    if progress:
        print(f"[{method}] " + _line("overall", overall), file=sys.stderr, flush=True)
    return {"method": method, "overall": overall, "sequences": per_seq}
