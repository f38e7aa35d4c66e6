"""Score a tracker's recorded ``tracks`` against a bag's ground truth (pure numpy, no ROS).

Tracks are matched to frames by header stamp and to ground-truth points by the ids the tracker
returned for each query. The scores come from exactly the functions ``gs-tracker eval`` uses
(:func:`~gs_tracker_ros.evaluation.metrics.badja_scores`, :func:`~...aggregate`), and the
prediction arrays are filled the way :func:`~gs_tracker_ros.evaluation.runner.run_tracker_on_sequence`
fills them: on its query frame a point is at its query position, visible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..evaluation.metrics import SCORE_KEYS
from ..evaluation.runner import pool_scores, score_sequence, summarize_scores
from .groundtruth import BagSequence, load_bag_sequence, parse_tracks
from .io import BagError, iter_messages, read_custom_data
from .typestore import TRACKS_TYPE

REPLAY_METADATA_KEY = "gs_tracker_ros.replay"


@dataclass
class SequenceReplay:
    """What came back from the node for one sequence.

    Attributes:
        gt: the ground truth read from the bag.
        id_to_row: tracker id -> point row of ``gt.seq``.
        tracks: ``{stamp ns: PointTrackArray CDR bytes}`` (first message per stamp).
        latency_ms: ``(T,)`` image publish -> tracks receipt in ms (NaN where no tracks came).
        method: the method name the node ran.
    """

    gt: BagSequence
    id_to_row: dict[int, int]
    tracks: dict[int, bytes]
    latency_ms: np.ndarray
    method: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def predictions(rep: SequenceReplay, with_variance: bool = False):
    """``(xy (N,T,2) float32 NaN-filled, visible (N,T) bool, received (T,) bool)`` in the point
    order of ``rep.gt.seq``; with ``with_variance`` also ``variance (N,T) float32`` and
    ``p_lost (N,T) float32`` (NaN where missing, 0 on the query frame)."""
    seq = rep.gt.seq
    n, t_all = seq.num_points, seq.num_frames
    xy = np.full((n, t_all, 2), np.nan, np.float32)
    var = np.full((n, t_all), np.nan, np.float32)
    lost = np.full((n, t_all), np.nan, np.float32)
    vis = np.zeros((n, t_all), bool)
    received = np.zeros(t_all, bool)
    frame_of = rep.gt.frame_of_stamp()
    for stamp, raw in rep.tracks.items():
        t = frame_of.get(int(stamp))
        if t is None:
            continue
        received[t] = True
        msg = parse_tracks(raw)
        for i, pt, vv, ss, pl in zip(msg.ids.tolist(), msg.xy, msg.visible, msg.variance, msg.p_lost):
            r = rep.id_to_row.get(int(i))
            if r is not None:
                xy[r, t] = pt
                vis[r, t] = vv
                var[r, t] = ss
                lost[r, t] = pl
    rows = np.arange(n)
    xy[rows, seq.query_frame] = seq.query_xy
    vis[rows, seq.query_frame] = True
    var[rows, seq.query_frame] = 0.0
    lost[rows, seq.query_frame] = 0.0
    if with_variance:
        return xy, vis, received, var, lost
    return xy, vis, received


def _percentile(values: np.ndarray, q: float) -> float:
    v = values[np.isfinite(values)]
    return float(np.percentile(v, q)) if v.size else float("nan")


def summary(scores: Mapping[str, Any], latency_ms: np.ndarray, dropped: int, frames: int) -> dict[str, Any]:
    """``eval``'s per-sequence / overall dict plus the replay fields."""
    out = summarize_scores(scores, _percentile(latency_ms, 50))
    out["frames"] = int(frames)
    out["dropped_frames"] = int(dropped)
    out["latency_ms_p50"] = _percentile(latency_ms, 50)
    out["latency_ms_p95"] = _percentile(latency_ms, 95)
    return out


def score_replays(replays: Sequence[SequenceReplay], method: str) -> dict[str, Any]:
    """``{"method", "overall", "sequences"}`` in the schema of ``gs-tracker eval --json``, with
    ``frames``, ``dropped_frames``, ``latency_ms_p50`` and ``latency_ms_p95`` added; here
    ``ms_per_frame`` is the median end-to-end latency (the node's own step time is not visible
    from outside)."""
    per_seq: dict[str, dict[str, Any]] = {}
    all_scores, all_lat = [], []
    dropped_total = frames_total = 0
    for rep in replays:
        xy, vis, received, var, lost = predictions(rep, with_variance=True)
        scores = score_sequence(xy, vis, var, rep.gt.seq, lost)
        dropped = int((~received).sum())
        per_seq[rep.gt.seq.name] = summary(scores, rep.latency_ms, dropped, len(received))
        all_scores.append(scores)
        all_lat.append(np.asarray(rep.latency_ms, np.float64))
        dropped_total += dropped
        frames_total += len(received)
    lat = np.concatenate(all_lat) if all_lat else np.zeros(0)
    overall = summary(pool_scores(all_scores), lat, dropped_total, frames_total)
    return {"method": method, "overall": overall, "sequences": per_seq}


def format_line(name: str, s: Mapping[str, Any]) -> str:
    parts = [f"{k}={100 * s[k]:.1f}" for k in SCORE_KEYS]
    return (f"{name}: " + " ".join(parts) + f" dropped={s['dropped_frames']}/{s['frames']} "
            f"latency p50={s['latency_ms_p50']:.1f} ms p95={s['latency_ms_p95']:.1f} ms")


# ----------------------------------------------------------------------------- recorded bags
def replay_metadata(rep: SequenceReplay, extra: Mapping[str, Any]) -> str:
    """JSON kept in a recorded bag's custom_data: what is needed to score it again later."""
    lat = [None if not np.isfinite(v) else round(float(v), 4) for v in rep.latency_ms]
    return json.dumps({"method": rep.method, "sequence": rep.gt.seq.name, "gt_bag": str(rep.gt.bag),
                       "id_to_point": {str(k): int(rep.gt.point_ids[v]) for k, v in rep.id_to_row.items()},
                       "latency_ms": lat, **extra})


def score_recording(gt_bags: Iterable[str | Path], records: Iterable[str | Path],
                    tracks_topic: str | None = None) -> dict[str, Any]:
    """Score recorded bags (``bag replay-eval --record``) against their ground-truth bags again.

    ``records[i]`` belongs to ``gt_bags[i]``."""

    replays = []
    method = ""
    for gt_path, rec_path in zip(list(gt_bags), list(records), strict=True):
        gt = load_bag_sequence(gt_path)
        raw_meta = read_custom_data(rec_path).get(REPLAY_METADATA_KEY)
        if not raw_meta:
            raise BagError(f"bag {rec_path} was not recorded by `gs-tracker bag replay-eval --record` "
                           f"(no {REPLAY_METADATA_KEY} in its metadata)")
        meta = json.loads(raw_meta)
        topic = tracks_topic or meta.get("tracks_topic", "/tracks")
        row_of_point = {int(p): r for r, p in enumerate(gt.point_ids)}
        id_to_row = {int(k): row_of_point[int(v)] for k, v in meta["id_to_point"].items() if int(v) in row_of_point}
        tracks: dict[int, bytes] = {}
        for t, msgtype, _, raw in iter_messages(rec_path, [topic]):
            if msgtype != TRACKS_TYPE:
                raise BagError(f"bag {rec_path}: topic {topic} holds {msgtype}, not {TRACKS_TYPE}")
            tracks.setdefault(parse_tracks(raw).stamp_ns, raw)
        lat = np.array([np.nan if v is None else v for v in meta.get("latency_ms", [])], np.float64)
        if lat.size != gt.seq.num_frames:
            lat = np.full(gt.seq.num_frames, np.nan)
        method = method or meta.get("method", "")
        replays.append(SequenceReplay(gt, id_to_row, tracks, lat, meta.get("method", "")))
    return score_replays(replays, method)
