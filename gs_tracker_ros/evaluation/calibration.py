"""Is the published uncertainty honest? Coverage of the error by sigma, and ``p_lost``'s ranking.

A tracker publishes, per point and frame, an isotropic variance ``v`` px^2 (the spread of the
estimate when it is right) and ``p_lost`` (the probability that it is wrong, see
:mod:`~gs_tracker_ros.core.uncertainty`). Among the points it calls right (``p_lost < 0.5``; every
point for a tracker without ``p_lost``), the error along each image axis is modelled as N(0, v):
for a visible labelled point with error vector ``e`` (px) and ``sigma = sqrt(v)``, ``|e| / sigma``
follows a Rayleigh law, so a calibrated tracker has ``P(|e| <= k sigma) = 1 - exp(-k^2 / 2)``:
39.3 % for k = 1 and 86.5 % for k = 2. ``p_lost`` is judged by how well it ranks the points that
are really lost (error above the delta_seg threshold of their frame): the ROC AUC (1 = every
lost point above every other, 0.5 = no better than chance).

:func:`calibration_counts` gives poolable counts over the scored visible pairs (the V set of
:mod:`~gs_tracker_ros.evaluation.metrics`), :func:`coverage_from_counts` the fractions and the
AUC, and :func:`error_vs_sigma` the curve (median error per sigma bin) for plots.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

CALIBRATED_COVERAGE = {1: 1.0 - np.exp(-0.5), 2: 1.0 - np.exp(-2.0)}  # 0.393, 0.865


LOST_CALL = 0.5  # a point with p_lost at or above this is "called lost"


def scored_errors(pred_xy: np.ndarray, variance: np.ndarray, gt_xy: np.ndarray, pairs: np.ndarray,
                  p_lost: np.ndarray | None = None, lost_px: np.ndarray | None = None):
    """``(error px, sigma px, p_lost, lost)`` 1-D arrays over the ``pairs (N, T) bool`` with a
    finite prediction. ``p_lost (N, T)``: NaN (or None) where the tracker has none, read as 0;
    ``lost_px (T,)``: the error above which a point counts as lost on each frame (None: inf)."""
    err = np.linalg.norm(np.asarray(pred_xy, np.float64) - np.asarray(gt_xy, np.float64), axis=-1)
    sigma = np.sqrt(np.maximum(np.asarray(variance, np.float64), 0.0))
    keep = pairs & np.isfinite(err) & np.isfinite(sigma)
    p = np.zeros(err.shape) if p_lost is None else np.nan_to_num(np.asarray(p_lost, np.float64), nan=0.0)
    thr = np.full(err.shape, np.inf) if lost_px is None else np.broadcast_to(np.asarray(lost_px, np.float64)[None],
                                                                            err.shape)
    return err[keep], sigma[keep], p[keep], err[keep] > thr[keep]


def calibration_counts(err: np.ndarray, sigma: np.ndarray, p_lost: np.ndarray | None = None,
                       lost: np.ndarray | None = None) -> dict[str, Any]:
    """Counts (JSON-ready, summable over sequences) plus the raw pairs for the curve and the AUC.

    ``n``, ``within_1sigma``, ``within_2sigma`` count the points called right (``p_lost <
    LOST_CALL``); ``n_all`` every scored point and ``called_lost`` those called lost.
    ``pairs``: ``[sigma, error, p_lost, lost]`` per scored point."""
    p = np.zeros(err.shape) if p_lost is None else np.asarray(p_lost, np.float64)
    lost = np.zeros(err.shape, bool) if lost is None else np.asarray(lost, bool)
    right = p < LOST_CALL
    return {
        "n": int(np.count_nonzero(right)),
        "within_1sigma": int(np.count_nonzero(right & (err <= sigma))),
        "within_2sigma": int(np.count_nonzero(right & (err <= 2.0 * sigma))),
        "n_all": int(err.size),
        "called_lost": int(np.count_nonzero(~right)),
        "pairs": [[round(float(s), 3), round(float(e), 3), round(float(q), 4), int(b)]
                  for s, e, q, b in zip(sigma, err, p, lost)],
    }


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half);
    NaN without both classes."""
    score = np.asarray(score, np.float64)
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size)
    sorted_scores = score[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def coverage_from_counts(counts: Mapping[str, Any]) -> dict[str, float]:
    """``coverage_1sigma``, ``coverage_2sigma`` and the medians of sigma and error among the points
    called right (fractions; NaN without pairs), ``called_lost`` (share of all scored points) and
    ``p_lost_auc`` (how ``p_lost`` ranks the lost points; NaN when the tracker has no p_lost)."""
    n = counts["n"]
    pairs = np.asarray(counts.get("pairs") or np.zeros((0, 4)), np.float64).reshape(-1, 4)
    right = pairs[:, 2] < LOST_CALL
    has_p = bool(np.any(pairs[:, 2] > 0))
    n_all = counts.get("n_all", n)
    return {
        "coverage_1sigma": counts["within_1sigma"] / n if n else float("nan"),
        "coverage_2sigma": counts["within_2sigma"] / n if n else float("nan"),
        "median_sigma_px": float(np.median(pairs[right, 0])) if right.any() else float("nan"),
        "median_error_px": float(np.median(pairs[right, 1])) if right.any() else float("nan"),
        "called_lost": counts.get("called_lost", 0) / n_all if n_all else float("nan"),
        "p_lost_auc": roc_auc(pairs[:, 2], pairs[:, 3] > 0) if has_p else float("nan"),
    }


def sum_calibration_counts(all_counts: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "n": sum(c["n"] for c in all_counts),
        "within_1sigma": sum(c["within_1sigma"] for c in all_counts),
        "within_2sigma": sum(c["within_2sigma"] for c in all_counts),
        "n_all": sum(c.get("n_all", c["n"]) for c in all_counts),
        "called_lost": sum(c.get("called_lost", 0) for c in all_counts),
        "pairs": [p for c in all_counts for p in c["pairs"]],
    }


def error_vs_sigma(pairs: np.ndarray, bins: int = 8) -> list[dict[str, float]]:
    """Median and 86.5th-percentile error per sigma bin (equal-count bins over ``pairs (M, >=2)``
    of ``[sigma, error, ...]`` px): a calibrated tracker has median error ~1.18 sigma and its 86.5th
    percentile at 2 sigma in every bin."""
    pairs = np.asarray(pairs, np.float64)
    pairs = pairs.reshape(-1, pairs.shape[-1] if pairs.ndim > 1 else 2)[:, :2]
    if len(pairs) == 0:
        return []
    order = np.argsort(pairs[:, 0])
    out = []
    for chunk in np.array_split(pairs[order], min(bins, len(pairs))):
        out.append({"sigma_px": float(np.median(chunk[:, 0])), "median_error_px": float(np.median(chunk[:, 1])),
                    "p86_error_px": float(np.percentile(chunk[:, 1], 86.5)), "n": int(len(chunk))})
    return out
