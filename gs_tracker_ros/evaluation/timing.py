"""Per-frame latency of a tracker on a grid of points (used by ``gs-tracker bench``)."""

from __future__ import annotations

import time

import numpy as np

from ..core.geometry import first_grid_points
from ..core.types import PointTracker


def time_tracker(tracker: PointTracker, frames: list[np.ndarray], num_points: int, warmup: int = 3) -> dict[str, float]:
    """Place a grid of ``num_points`` on ``frames[0]``, then time ``step()`` on the rest.

    Returns the median frames/s (of the typical frame, ``fps_median``) and the throughput
    (frames / total time, ``fps_mean``: what a live stream gets; lower than the median where a
    schedule runs heavy stages on some frames only), the p50 / p95 / mean latency in ms over the
    frames after ``warmup``, and the median CPU time of this process per frame (``cpu_ms_p50``, all threads; on a shared
    machine a steadier measure of the work than the wall-clock latency).
    """
    h, w = frames[0].shape[:2]
    tracker.step(frames[0])
    tracker.add_queries(first_grid_points(w, h, num_points))
    times, cpu = [], []
    for t, frame in enumerate(frames[1:]):
        t0, c0 = time.perf_counter(), time.process_time()
        tracker.step(frame)
        if t >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    ms = np.asarray(times)
    return {"fps_median": float(1000.0 / np.median(ms)), "fps_mean": float(1000.0 / ms.mean()),
            "latency_ms_p50": float(np.median(ms)),
            "latency_ms_p95": float(np.percentile(ms, 95)), "latency_ms_mean": float(ms.mean()),
            "cpu_ms_p50": float(np.median(cpu)),
            "frames_timed": int(len(ms))}
