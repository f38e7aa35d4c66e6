"""Query jitter: how much a labelled-video score depends on the exact query pixels.

A BADJA query is a hand-clicked joint position, and a video has only ~20 of them, so a tracker's
score can move by several points when every query moves by one pixel: a point that a chain
follows from one pixel is lost from the next, and a lost point loses all its later frames.
A default tuned on the exact queries can ride that noise (measured on badja_dev,
docs/accuracy.md: the live profile's horsejump-high delta_seg is 45.9 on the exact queries and
39.5 on average over six draws of +-1 px).

So the protocol also scores each method on ``runs`` copies of every sequence whose queries are
moved by independent offsets, uniform in ``[-amplitude, +amplitude]`` px on each axis (x right,
y down; clipped to the image), with the ground truth unchanged. Draw ``k`` of sequence ``i`` uses
the seed ``(seed, k, i)``, so every method sees the same jittered queries. Reported per video and
pooled, for each score: the mean, the standard deviation (ddof 0), the min and the max over the
draws. The mean is a score no default can have been tuned to pixel by pixel; the spread says how
far apart two methods must be before a single run can tell them apart.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.types import PointTracker
from .badja import TrackingSequence

JITTER_KEYS: tuple[str, ...] = ("delta_seg", "delta_3px", "delta_avg", "OA", "AJ")


def jitter_queries(seq: TrackingSequence, amplitude_px: float, rng: np.random.Generator) -> TrackingSequence:
    """A copy of ``seq`` whose ``query_xy`` moved by uniform offsets in ``[-a, a]`` px per axis
    (clipped to the image); frames, query frames and ground truth are shared, not copied."""
    if not (np.isfinite(amplitude_px) and amplitude_px >= 0):
        raise InputError(f"query jitter amplitude must be a finite number of px >= 0, got {amplitude_px}")
    h, w = seq.image_hw
    offsets = rng.uniform(-amplitude_px, amplitude_px, size=seq.query_xy.shape)
    moved = np.clip(seq.query_xy.astype(np.float64) + offsets, 0.0, [w - 1.0, h - 1.0])
    return dataclasses.replace(seq, query_xy=moved.astype(np.float32))


def jittered_sequences(sequences: Sequence[TrackingSequence], amplitude_px: float, runs: int,
                       seed: int = 0) -> list[list[TrackingSequence]]:
    """``runs`` jittered copies of ``sequences`` (draw k, sequence i from the seed ``(seed, k, i)``)."""
    if runs < 1:
        raise InputError(f"query jitter needs at least 1 draw, got {runs}")
    return [[jitter_queries(seq, amplitude_px, np.random.default_rng((seed, k, i)))
             for i, seq in enumerate(sequences)] for k in range(runs)]


def _stats(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std()), "min": float(v.min()), "max": float(v.max()),
            "values": v.tolist()}


def summarize_jitter(results: Sequence[Mapping[str, Any]], amplitude_px: float, seed: int = 0,
                     keys: Sequence[str] = JITTER_KEYS) -> dict[str, Any]:
    """The spread of ``results`` (one :func:`~gs_tracker_ros.evaluation.runner.evaluate_badja`
    result per draw, same sequences): ``{"amplitude_px", "runs", "seed", "sequences": {name:
    {key: {mean, sd, min, max, values}}}, "overall": {...}}``."""
    if not results:
        raise InputError("no jittered runs to summarize")
    names = list(results[0]["sequences"])
    out: dict[str, Any] = {"amplitude_px": float(amplitude_px), "runs": len(results), "seed": int(seed)}
    out["sequences"] = {n: {k: _stats([r["sequences"][n][k] for r in results]) for k in keys} for n in names}
    out["overall"] = {k: _stats([r["overall"][k] for r in results]) for k in keys}
    return out


def jitter_means(method: str, jitter: Mapping[str, Any]) -> dict[str, Any]:
    """The means of a :func:`summarize_jitter` summary shaped like an ``evaluate_badja`` result
    (``{"method", "sequences": {name: {key: mean}}, "overall": {key: mean}}``), so that
    :func:`~gs_tracker_ros.evaluation.protocol.verdict` and the eval tables read it as they are."""
    def means(per_key: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        return {k: s["mean"] for k, s in per_key.items()}

    return {"method": method, "sequences": {n: means(v) for n, v in jitter["sequences"].items()},
            "overall": means(jitter["overall"])}


def evaluate_jittered(evaluate: Callable[[Sequence[TrackingSequence]], Mapping[str, Any]],
                      sequences: Sequence[TrackingSequence], amplitude_px: float, runs: int,
                      seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """Run ``evaluate`` (sequences -> an ``evaluate_badja`` result, e.g. a fresh tracker per
    sequence) on ``runs`` jittered copies of ``sequences`` and :func:`summarize_jitter` them;
    with ``progress`` one line per draw on stderr."""
    results = []
    for k, draw in enumerate(jittered_sequences(sequences, amplitude_px, runs, seed)):
        results.append(evaluate(draw))
        if progress:
            o = results[-1]["overall"]
            print(f"[{results[-1].get('method', '?')}] query jitter draw {k + 1}/{runs}: "
                  + " ".join(f"{key}={100 * o[key]:.1f}" for key in ("delta_seg", "delta_avg", "AJ")),
                  file=sys.stderr, flush=True)
    return summarize_jitter(results, amplitude_px, seed)


def evaluate_badja_jittered(tracker_factory: Callable[[], PointTracker], sequences: Sequence[TrackingSequence],
                            amplitude_px: float, runs: int, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """:func:`evaluate_jittered` with :func:`~gs_tracker_ros.evaluation.runner.evaluate_badja`."""
    from .runner import evaluate_badja

    return evaluate_jittered(lambda seqs: evaluate_badja(tracker_factory, seqs, progress=False), sequences,
                             amplitude_px, runs, seed, progress)
