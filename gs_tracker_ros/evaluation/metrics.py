"""Point-tracking accuracy on ground truth: BADJA PCK and TAP-Vid metrics (pure numpy).

Which (point n, frame t) pairs are scored
    S = { (n, t) : annotated[t] and t > query_frame[n] }  (annotated frames strictly after the
    query; unlabelled frames carry no ground truth and are never scored). V = { (n, t) in S :
    GT visible }. ``d = |pred - gt|`` is the Euclidean error; every "within" test is strict (<),
    as in the TAP-Vid reference evaluation.

BADJA (native resolution, e.g. 854x480)
    delta_seg = |{(n,t) in V : d < 0.2 * sqrt(mask_area[t])}| / |V|   (V restricted to frames
                whose mask area is known)
    delta_3px = |{(n,t) in V : d < 3 px}| / |V|

TAP-Vid (coordinates rescaled to 256x256: x * 256/W, y * 256/H), thresholds k in {1,2,4,8,16} px
    delta_k   = |{(n,t) in V : d256 < k}| / |V|           (predicted visibility ignored)
    delta_avg = mean_k delta_k
    OA        = |{(n,t) in S : pred_visible == gt_visible}| / |S|
    TP_k = |{(n,t) in S : gt vis, pred vis, d256 < k}|
    FP_k = |{(n,t) in S : pred vis and (gt occluded or d256 >= k)}|
    FN_k = |{(n,t) in S : gt vis and not TP}|   so TP_k + FN_k = |V|
    Jaccard_k = TP_k / (TP_k + FP_k + FN_k) = TP_k / (|V| + FP_k);  AJ = mean_k Jaccard_k
    (a visible prediction beyond the threshold on a visible point is both a FP and a FN, as in
    the TAP-Vid definition).

Aggregation over sequences (:func:`aggregate`)
    Default ``mode="pooled"``: the integer counts above are summed over all sequences and the
    fractions recomputed, i.e. every scored (point, frame) pair weighs the same, whichever video
    it comes from. ``mode="mean"`` instead averages per-sequence scores (TAP-Vid's benchmark
    convention, every video weighs the same).

All scores are fractions in [0, 1]; a score whose denominator is zero is NaN.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..core.errors import InputError
from .badja import TrackingSequence

TAPVID_THRESHOLDS: tuple[int, ...] = (1, 2, 4, 8, 16)
TAPVID_SIZE: tuple[int, int] = (256, 256)  # (W, H) the TAP-Vid metrics are defined at
SEG_FACTOR = 0.2  # delta_seg threshold = SEG_FACTOR * sqrt(mask area)
PX_THRESHOLD = 3.0  # delta_3px threshold in native px

SCORE_KEYS: tuple[str, ...] = ("delta_seg", "delta_3px", "delta_avg", "OA", "AJ")


def seg_threshold(mask_area: np.ndarray | None, num_frames: int) -> np.ndarray:
    """``(T,)`` px delta_seg threshold per frame, ``SEG_FACTOR * sqrt(mask area)`` (NaN: unknown)."""
    if mask_area is None:
        return np.full(num_frames, np.nan)
    return SEG_FACTOR * np.sqrt(np.asarray(mask_area, np.float64))


def seg_threshold_px(seq: TrackingSequence) -> np.ndarray:
    """``(T,)`` px delta_seg threshold of each frame of ``seq`` (inf where the mask is unknown)."""
    thr = seg_threshold(seq.mask_area, seq.num_frames)
    return np.where(np.isfinite(thr), thr, np.inf)


def scored_pairs(annotated: np.ndarray, query_frame: np.ndarray) -> np.ndarray:
    """``(N, T) bool``: annotated frames strictly after each point's query frame."""
    t = np.arange(annotated.shape[0])
    return annotated[None, :] & (t[None, :] > np.asarray(query_frame)[:, None])


def count_matches(
    pred_xy: np.ndarray,
    pred_visible: np.ndarray,
    gt_xy: np.ndarray,
    gt_visible: np.ndarray,
    evaluate: np.ndarray,
    image_hw: tuple[int, int],
    mask_area: np.ndarray | None = None,
    per_point: bool = False,
) -> dict[str, Any]:
    """Integer counts behind every score (see the module docstring), JSON-ready.

    Args:
        pred_xy, gt_xy: ``(N, T, 2)`` px at native resolution.
        pred_visible, gt_visible: ``(N, T) bool``.
        evaluate: ``(N, T) bool`` the scored pairs S.
        image_hw: native ``(H, W)`` px, for the 256x256 rescale.
        mask_area: ``(T,)`` px^2 object area per frame for delta_seg (NaN / None = unknown).
        per_point: count each point (row) separately: every count becomes a list of N counts
            (``within``, ``tp``, ``fp``: one such list per threshold), for resampling points
            (:mod:`~gs_tracker_ros.evaluation.significance`).

    Returns:
        dict with ``n_pairs`` (|S|), ``n_visible`` (|V|), ``n_visible_seg``, ``occ_correct``,
        ``correct_seg``, ``correct_3px``, and per TAP-Vid threshold the lists ``within``,
        ``tp`` and ``fp``.
    """
    pred_visible = np.asarray(pred_visible, bool)
    gt_visible = np.asarray(gt_visible, bool)
    evaluate = np.asarray(evaluate, bool)
    diff = np.asarray(pred_xy, np.float64) - np.asarray(gt_xy, np.float64)
    dist = np.sqrt(np.sum(diff**2, axis=-1))  # NaN predictions never count as within
    h, w = image_hw
    scale = np.array([TAPVID_SIZE[0] / w, TAPVID_SIZE[1] / h])
    dist256 = np.sqrt(np.sum((diff * scale) ** 2, axis=-1))

    vis = gt_visible & evaluate
    seg_thr = seg_threshold(mask_area, evaluate.shape[1])  # (T,)
    seg_known = np.isfinite(seg_thr)[None, :]
    with np.errstate(invalid="ignore"):
        seg_ok = dist < np.where(np.isfinite(seg_thr), seg_thr, -1.0)[None, :]
        px_ok = dist < PX_THRESHOLD

    def count(mask: np.ndarray):
        per_row = np.count_nonzero(mask.reshape(mask.shape[0], -1), axis=1)
        return per_row.tolist() if per_point else int(per_row.sum())

    within, tp, fp = [], [], []
    pred_vis = pred_visible & evaluate
    for k in TAPVID_THRESHOLDS:
        with np.errstate(invalid="ignore"):
            near = dist256 < k
        within.append(count(vis & near))
        tp.append(count(vis & near & pred_vis))
        fp.append(count(pred_vis & (~gt_visible | ~near)))
    return {
        "n_pairs": count(evaluate),
        "n_visible": count(vis),
        "n_visible_seg": count(vis & seg_known),
        "occ_correct": count(evaluate & (pred_visible == gt_visible)),
        "correct_seg": count(vis & seg_known & seg_ok),
        "correct_3px": count(vis & px_ok),
        "within": within,
        "tp": tp,
        "fp": fp,
    }


def _ratio(num, den):
    """``num / den`` elementwise, NaN where ``den`` is 0."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def scores_from_counts(counts: Mapping[str, Any]) -> dict[str, Any]:
    """The five scores (fractions in [0, 1], NaN if undefined) from :func:`count_matches` counts.

    Counts are numbers (one sequence or a pool: float scores) or arrays of B resampled counts
    (``within``, ``tp``, ``fp``: ``(K, B)``; then every score is a ``(B,)`` array)."""
    nv = np.asarray(counts["n_visible"], np.float64)
    within, tp, fp = (np.asarray(counts[k], np.float64) for k in ("within", "tp", "fp"))
    delta_avg = np.where(nv > 0, np.mean(_ratio(within, nv), axis=0), np.nan)
    aj = np.where(nv > 0, np.mean(_ratio(tp, nv + fp), axis=0), np.nan)
    scores = {
        "delta_seg": _ratio(counts["correct_seg"], counts["n_visible_seg"]),
        "delta_3px": _ratio(counts["correct_3px"], nv),
        "delta_avg": delta_avg,
        "OA": _ratio(counts["occ_correct"], counts["n_pairs"]),
        "AJ": aj,
    }
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in scores.items()}


def badja_scores(pred_xy: np.ndarray, pred_visible: np.ndarray, seq: TrackingSequence) -> dict[str, Any]:
    """Score predictions for one sequence under the BADJA protocol.

    Args:
        pred_xy: ``(N, T, 2)`` predicted positions in px of the native frame, points in the
            order of ``seq`` (values outside the scored pairs are ignored, NaN allowed).
        pred_visible: ``(N, T) bool`` predicted visibility.
        seq: the ground truth.

    Returns:
        ``{"delta_seg", "delta_3px", "delta_avg", "OA", "AJ"}`` fractions in [0, 1] plus
        ``"counts"`` (see :func:`count_matches`) for pooling with :func:`aggregate` and
        ``"point_counts"`` (the same per point) for resampling points.
    """
    pred_xy = np.asarray(pred_xy)
    pred_visible = np.asarray(pred_visible)
    n, t = seq.visible.shape
    if pred_xy.shape != (n, t, 2):
        raise InputError(f"pred_xy must have shape {(n, t, 2)} for sequence {seq.name}, got {pred_xy.shape}")
    if pred_visible.shape != (n, t):
        raise InputError(
            f"pred_visible must have shape {(n, t)} for sequence {seq.name}, got {pred_visible.shape}"
        )
    args = (pred_xy, pred_visible.astype(bool), seq.tracks_xy, seq.visible,
            scored_pairs(seq.annotated, seq.query_frame), seq.image_hw, seq.mask_area)
    point_counts = count_matches(*args, per_point=True)
    counts = total_counts(point_counts)
    return {**scores_from_counts(counts), "counts": counts, "point_counts": point_counts}


def total_counts(point_counts: Mapping[str, Any]) -> dict[str, Any]:
    """The counts :func:`count_matches` returns, from its ``per_point=True`` counts (summed over
    the points), so that one pass over the pairs gives both."""
    out: dict[str, Any] = {}
    for key, value in point_counts.items():
        arr = np.asarray(value, np.int64)
        out[key] = arr.sum(axis=-1).tolist() if arr.ndim == 2 else int(arr.sum())
    return out


def _sum_counts(all_counts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for counts in all_counts:
        for key, value in counts.items():
            if isinstance(value, list):
                prev = total.get(key, [0] * len(value))
                total[key] = [a + b for a, b in zip(prev, value)]
            else:
                total[key] = total.get(key, 0) + value
    return total


def aggregate(per_sequence: Sequence[Mapping[str, Any]], mode: str = "pooled") -> dict[str, Any]:
    """Overall scores over several sequences' :func:`badja_scores` results.

    ``mode="pooled"`` (default): sum the counts of all sequences and recompute the fractions, so
    every scored (point, frame) pair counts once. ``mode="mean"``: unweighted mean of the
    per-sequence scores (NaN scores skipped). Either way the summed ``"counts"`` are returned.
    """
    if not per_sequence:
        raise InputError("aggregate needs at least one sequence result")
    total = _sum_counts([r["counts"] for r in per_sequence])
    if mode == "pooled":
        scores = scores_from_counts(total)
    elif mode == "mean":
        scores = {}
        for key in SCORE_KEYS:
            vals = np.array([r[key] for r in per_sequence], np.float64)
            vals = vals[np.isfinite(vals)]
            scores[key] = float(vals.mean()) if vals.size else float("nan")
    else:
        raise InputError(f"unknown aggregation mode {mode!r}; use 'pooled' or 'mean'")
    return {**scores, "counts": total}
