"""How much of a score difference between two methods is noise: a paired bootstrap over points.

badja_dev has about 20 labelled points per video, and the (point, frame) pairs of one point are
strongly correlated (a point lost on frame t stays lost), so the unit to resample is the point,
not the pair. Both methods ran on the same points; for each of ``n_boot`` resamples the same
points are drawn (with replacement) for both, their per-point counts
(:func:`~gs_tracker_ros.evaluation.metrics.count_matches` with ``per_point=True``) are summed and
scored, and the difference of the scores is kept. The pool draws each video's points from that
video (stratified), so every resample has the videos' sizes. Reported: the observed difference
and the central ``level`` interval of the resampled ones, in score units (fractions).

A difference whose interval contains 0 is called ``within noise``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..core.errors import InputError
from .cycle import CYCLE_FRACTION_KEYS, cycle_successes
from .masks import MASK_FRACTION_KEYS, mask_fractions
from .metrics import scores_from_counts

DIFF_KEYS: tuple[str, ...] = ("delta_seg", "delta_avg", "AJ")
CYCLE_DIFF_KEYS: tuple[str, ...] = CYCLE_FRACTION_KEYS
MASK_DIFF_KEYS: tuple[str, ...] = MASK_FRACTION_KEYS


def _check_bootstrap(n_boot: int, level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise InputError(f"n_boot must be >= 1, got {n_boot}")


def _interval(diff: np.ndarray, observed: float, level: float) -> dict[str, float]:
    """``{"diff": observed, "low", "high"}``: the central ``level`` share of the finite resampled
    differences ``diff`` (NaN bounds when there are none)."""
    diff = np.asarray(diff, np.float64)
    diff = diff[np.isfinite(diff)]
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(diff, [tail, 100.0 - tail]) if diff.size else (np.nan, np.nan)
    return {"diff": float(observed), "low": float(low), "high": float(high)}


def _as_arrays(point_counts: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Per-point counts as int arrays: ``(N,)`` per count, ``(K, N)`` for the per-threshold ones."""
    return {k: np.asarray(v, np.int64) for k, v in point_counts.items()}


def _resampled_scores(per_video: Sequence[dict[str, np.ndarray]], draws: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Scores ``(B,)`` of the pooled counts of ``draws[i] (B, N_i)`` point indices into video i."""
    total: dict[str, np.ndarray] = {}
    for counts, idx in zip(per_video, draws):
        for key, arr in counts.items():
            summed = arr[..., idx].sum(axis=-1)  # (B,) or (K, B)
            total[key] = total[key] + summed if key in total else summed
    return scores_from_counts(total)


def _point_counts(result: Mapping[str, Any], video: str) -> dict[str, np.ndarray]:
    row = result["sequences"][video]
    if "point_counts" not in row:
        raise InputError(f"{result.get('method', '?')}: no per-point counts for {video} (re-run the evaluation)")
    return _as_arrays(row["point_counts"])


def paired_difference(with_choice: Mapping[str, Any], without_choice: Mapping[str, Any],
                      keys: Sequence[str] = DIFF_KEYS, n_boot: int = 2000, level: float = 0.9,
                      seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Score differences ``with_choice - without_choice`` per video and pooled, with intervals.

    Both are :func:`~gs_tracker_ros.evaluation.runner.evaluate_badja` results on the same videos.
    Returns ``{video or "pooled": {key: {"diff", "low", "high"}}}`` (fractions; ``low`` / ``high``
    bound the central ``level`` share of the ``n_boot`` paired resamples).
    """
    _check_bootstrap(n_boot, level)
    videos = list(with_choice["sequences"])
    if sorted(videos) != sorted(without_choice["sequences"]):
        raise InputError("paired_difference needs results on the same videos")
    rng = np.random.default_rng(seed)
    a = {v: _point_counts(with_choice, v) for v in videos}
    b = {v: _point_counts(without_choice, v) for v in videos}
    draws = {}
    for v in videos:
        n = a[v]["n_visible"].shape[0]
        if b[v]["n_visible"].shape[0] != n:
            raise InputError(f"{v}: the two results have different points ({n} and {b[v]['n_visible'].shape[0]})")
        draws[v] = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), np.int64)
    out: dict[str, dict[str, dict[str, float]]] = {}
    groups = [(v, [v]) for v in videos] + [("pooled", videos)]
    for name, members in groups:
        observed = [np.arange(a[v]["n_visible"].shape[0])[None] for v in members]  # every point once
        obs_a = _resampled_scores([a[v] for v in members], observed)
        obs_b = _resampled_scores([b[v] for v in members], observed)
        res_a = _resampled_scores([a[v] for v in members], [draws[v] for v in members])
        res_b = _resampled_scores([b[v] for v in members], [draws[v] for v in members])
        out[name] = {key: _interval(res_a[key] - res_b[key], obs_a[key][0] - obs_b[key][0], level) for key in keys}
    return out


def paired_cycle_difference(with_choice: Mapping[str, Any], without_choice: Mapping[str, Any],
                            n_boot: int = 2000, level: float = 0.9, seed: int = 0) -> dict[str, dict[str, float]]:
    """Cycle-check differences ``with_choice - without_choice`` (pooled over the clips) with the
    ``level`` interval of a paired bootstrap over the grid points, each clip's points drawn from
    that clip. Both are :func:`~gs_tracker_ros.evaluation.cycle.evaluate_cycle` results on the same
    clips and grid. Returns ``{key: {"diff", "low", "high"}}`` for :data:`CYCLE_DIFF_KEYS` (fractions)."""
    _check_bootstrap(n_boot, level)
    clips = list(with_choice["sequences"])
    if sorted(clips) != sorted(without_choice["sequences"]):
        raise InputError("paired_cycle_difference needs results on the same clips")
    rng = np.random.default_rng(seed)
    diffs = {k: np.zeros(n_boot) for k in CYCLE_DIFF_KEYS}
    observed = {k: 0.0 for k in CYCLE_DIFF_KEYS}
    total = 0
    for clip in clips:
        errs = []
        for res in (with_choice, without_choice):
            if "errors" not in res["sequences"][clip]:
                raise InputError(f"{res.get('method', '?')}: no per-point errors for {clip} (re-run the evaluation)")
            errs.append(np.asarray(res["sequences"][clip]["errors"], np.float64))
        if errs[0].shape != errs[1].shape:
            raise InputError(f"{clip}: the two results have different grids ({errs[0].size} and {errs[1].size} points)")
        n = errs[0].size
        total += n
        idx = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), np.int64)
        ok_a, ok_b = cycle_successes(errs[0]), cycle_successes(errs[1])
        for key in CYCLE_DIFF_KEYS:
            d = ok_a[key].astype(np.int64) - ok_b[key].astype(np.int64)  # per point: +1, 0 or -1
            observed[key] += float(d.sum())
            diffs[key] += d[idx].sum(axis=1)
    scale = 1.0 / max(total, 1)
    return {key: _interval(diffs[key] * scale, observed[key] * scale, level) for key in CYCLE_DIFF_KEYS}


def paired_mask_difference(with_choice: Mapping[str, Any], without_choice: Mapping[str, Any],
                           n_boot: int = 2000, level: float = 0.9, seed: int = 0) -> dict[str, dict[str, float]]:
    """Mask-stay differences ``with_choice - without_choice`` (pooled over the clips) with the
    ``level`` interval of a paired bootstrap over the seeds, each clip's seeds drawn from that clip.
    Both are :func:`~gs_tracker_ros.evaluation.masks.evaluate_masks` results on the same clips and
    protocol. Returns ``{key: {"diff", "low", "high"}}`` for :data:`MASK_DIFF_KEYS` (fractions)."""
    _check_bootstrap(n_boot, level)
    clips = list(with_choice["sequences"])
    if sorted(clips) != sorted(without_choice["sequences"]):
        raise InputError("paired_mask_difference needs results on the same clips")
    rng = np.random.default_rng(seed)
    per_clip = []
    for clip in clips:
        counts = []
        for res in (with_choice, without_choice):
            if "point_counts" not in res["sequences"][clip]:
                raise InputError(f"{res.get('method', '?')}: no per-seed counts for {clip} (re-run the evaluation)")
            counts.append(_as_arrays(res["sequences"][clip]["point_counts"]))
        n = counts[0]["pairs"].shape[0]
        if counts[1]["pairs"].shape[0] != n:
            raise InputError(f"{clip}: the two results have different seeds ({n} and {counts[1]['pairs'].shape[0]})")
        per_clip.append((counts, rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), np.int64)))

    def scores(which: int, draw: bool) -> dict[str, np.ndarray]:
        """Resampled (``draw``) or observed fractions of result ``which``, summed over the clips."""
        total = {key: 0 for key in ("pairs", "visible", "stay")}
        for counts, idx in per_clip:
            for key in total:
                arr = counts[which][key]
                total[key] = total[key] + (arr[idx].sum(axis=1) if draw else np.array([arr.sum()]))
        return mask_fractions(total["pairs"], total["visible"], total["stay"])

    obs_a, obs_b = scores(0, False), scores(1, False)
    res_a, res_b = scores(0, True), scores(1, True)
    return {key: _interval(res_a[key] - res_b[key], float(obs_a[key][0] - obs_b[key][0]), level)
            for key in MASK_DIFF_KEYS}


def beyond_noise(interval: Mapping[str, float]) -> bool:
    """Whether a :func:`paired_difference` interval excludes 0."""
    return bool(interval["low"] > 0 or interval["high"] < 0)


def format_difference(interval: Mapping[str, float]) -> str:
    """``+2.1 [-0.4, +4.6]`` in score points (percent), ``*`` appended when beyond noise."""
    d, lo, hi = (100.0 * interval[k] for k in ("diff", "low", "high"))
    star = "*" if beyond_noise(interval) else ""
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]{star}"
