"""Is the published variance honest? Coverage of the positional error by the predicted sigma.

A tracker publishes, per point and frame, an isotropic variance ``v`` px^2: the error along
each image axis is modelled as N(0, v). For a visible labelled point with error vector
``e`` (px) and ``sigma = sqrt(v)``, ``|e| / sigma`` then follows a Rayleigh law, so a calibrated
tracker has ``P(|e| <= k sigma) = 1 - exp(-k^2 / 2)``: 39.3 % for k = 1 and 86.5 % for k = 2.

:func:`calibration_counts` gives poolable integer counts over the scored visible pairs (the V
set of :mod:`~gs_tracker_ros.evaluation.metrics`), :func:`coverage_from_counts` the fractions,
and :func:`error_vs_sigma` the curve (median error per sigma bin) for plots.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

CALIBRATED_COVERAGE = {1: 1.0 - np.exp(-0.5), 2: 1.0 - np.exp(-2.0)}  # 0.393, 0.865


def scored_errors(pred_xy: np.ndarray, variance: np.ndarray, gt_xy: np.ndarray, pairs: np.ndarray):
    """``(error px, sigma px)`` 1-D arrays over the ``pairs (N, T) bool`` with a finite prediction."""
    err = np.linalg.norm(np.asarray(pred_xy, np.float64) - np.asarray(gt_xy, np.float64), axis=-1)
    sigma = np.sqrt(np.maximum(np.asarray(variance, np.float64), 0.0))
    keep = pairs & np.isfinite(err) & np.isfinite(sigma)
    return err[keep], sigma[keep]


def calibration_counts(err: np.ndarray, sigma: np.ndarray) -> dict[str, Any]:
    """Integer counts (JSON-ready, summable over sequences) plus the raw pairs for the curve."""
    return {
        "n": int(err.size),
        "within_1sigma": int(np.count_nonzero(err <= sigma)),
        "within_2sigma": int(np.count_nonzero(err <= 2.0 * sigma)),
        "pairs": [[round(float(s), 3), round(float(e), 3)] for s, e in zip(sigma, err)],
    }


def coverage_from_counts(counts: Mapping[str, Any]) -> dict[str, float]:
    """``coverage_1sigma``, ``coverage_2sigma`` (fractions; NaN without pairs), medians of both."""
    n = counts["n"]
    pairs = np.asarray(counts.get("pairs") or np.zeros((0, 2)), np.float64).reshape(-1, 2)
    return {
        "coverage_1sigma": counts["within_1sigma"] / n if n else float("nan"),
        "coverage_2sigma": counts["within_2sigma"] / n if n else float("nan"),
        "median_sigma_px": float(np.median(pairs[:, 0])) if len(pairs) else float("nan"),
        "median_error_px": float(np.median(pairs[:, 1])) if len(pairs) else float("nan"),
    }


def sum_calibration_counts(all_counts: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "n": sum(c["n"] for c in all_counts),
        "within_1sigma": sum(c["within_1sigma"] for c in all_counts),
        "within_2sigma": sum(c["within_2sigma"] for c in all_counts),
        "pairs": [p for c in all_counts for p in c["pairs"]],
    }


def error_vs_sigma(pairs: np.ndarray, bins: int = 8) -> list[dict[str, float]]:
    """Median and 86.5th-percentile error per sigma bin (equal-count bins over ``pairs (M, 2)``
    of ``[sigma, error]`` px): a calibrated tracker has median error ~1.18 sigma and its 86.5th
    percentile at 2 sigma in every bin."""
    pairs = np.asarray(pairs, np.float64).reshape(-1, 2)
    if len(pairs) == 0:
        return []
    order = np.argsort(pairs[:, 0])
    out = []
    for chunk in np.array_split(pairs[order], min(bins, len(pairs))):
        out.append({"sigma_px": float(np.median(chunk[:, 0])), "median_error_px": float(np.median(chunk[:, 1])),
                    "p86_error_px": float(np.percentile(chunk[:, 1], 86.5)), "n": int(len(chunk))})
    return out
