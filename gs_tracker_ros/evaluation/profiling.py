"""Where a :class:`~gs_tracker_ros.tracking.tracker.ProbabilisticTracker` step spends its time.

:func:`profile_tracker` wraps the parts of one tracker instance (frame buffer, motion sources,
chain filter, observer, fusion, hidden-point step, state build) with wall-clock timers, steps it
over a clip and returns the mean *exclusive* time of each stage in ms per frame (a stage's time
does not include the stages it calls, so the rows add up to the whole step), as wall-clock time
and as CPU time of the process (all its threads: OpenCV's workers included). On a machine shared
with other work the CPU time is the steadier measure of the work done; the wall time is what a
user waits. Chains are timed
per source and interval (``lk t-1``, ``lk t-2``, ...; each row is one forward + backward LK
pass of all its points), or, for a source that batches them (``lk.backend: batched``), as one
row for all chains of the frame. The timers change nothing that is computed: tracked positions are the
same with and without them. Used by ``gs-tracker bench --profile``.

:func:`lk_pyramid_share` measures how much of one forward + backward LK pass is the image
pyramids OpenCV builds inside every ``calcOpticalFlowPyrLK`` call (a one-point call costs
little more than its pyramids), i.e. what sharing pyramids between chains could save.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ..core.geometry import first_grid_points
from ..tracking import tracker as tracker_module
from ..motion.lucas_kanade import lk_forward_backward


@dataclass
class StageProfile:
    """Mean exclusive wall time per stage (ms per frame) over ``frames`` timed frames.

    Attributes:
        stages: stage name -> mean wall ms per frame (frame push and grey conversion first, the
            chains by interval, the rest in the order they first ran).
        cpu_stages: the same stages' mean process CPU ms per frame.
        step_ms: mean wall time of a whole ``step()`` (ms per frame), including untimed glue.
        step_cpu_ms: its process CPU time (ms per frame).
        frames: number of timed frames.
        num_points: live points tracked.
    """

    stages: dict[str, float] = field(default_factory=dict)
    cpu_stages: dict[str, float] = field(default_factory=dict)
    step_ms: float = 0.0
    step_cpu_ms: float = 0.0
    frames: int = 0
    num_points: int = 0

    @property
    def untimed_ms(self) -> float:
        """Wall time of ``step()`` outside every named stage (ring update, drift, array glue)."""
        return self.step_ms - sum(self.stages.values())

    @property
    def untimed_cpu_ms(self) -> float:
        return self.step_cpu_ms - sum(self.cpu_stages.values())


class _StageClock:
    """Exclusive timers: time spent inside a nested timed call is charged to the inner stage only."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)  # wall seconds
        self.cpu: dict[str, float] = defaultdict(float)  # process CPU seconds
        self._stack: list[list[float]] = []  # per open call: [child wall s, child CPU s]

    def wrap(self, name: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append([0.0, 0.0])
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                child_wall, child_cpu = self._stack.pop()
                label = name(*args, **kwargs) if callable(name) else name
                self.total[label] += wall - child_wall
                self.cpu[label] += cpu - child_cpu
                if self._stack:
                    self._stack[-1][0] += wall
                    self._stack[-1][1] += cpu

        return timed

    def reset(self) -> None:
        """Zero every stage, keeping the order in which they first ran."""
        for key in self.total:
            self.total[key] = 0.0
            self.cpu[key] = 0.0


@contextmanager
def _patched(module: Any, attr: str, replacement: Any) -> Iterator[None]:
    original = getattr(module, attr)
    setattr(module, attr, replacement)
    try:
        yield
    finally:
        setattr(module, attr, original)


def _instrument(tracker: Any, clock: _StageClock) -> None:
    """Replace the tracker's parts with timed wrappers (instance attributes only)."""
    buf = tracker.buffer
    buf.push = clock.wrap("frame push (validate, copy)", buf.push)
    buf.gray = clock.wrap("grey conversion", buf.gray)
    for src in tracker.sources:
        src.on_frame = clock.wrap(f"{src.name} per-frame work (on_frame)", src.on_frame)
        src.estimate = clock.wrap(
            lambda _buffer, a, b, _points, _name=src.name: f"{_name} chain t-{b - a} (forward + backward)",
            src.estimate)
        if src.batches:  # all chains of a frame in one call: one row
            src.estimate_many = clock.wrap(f"{src.name} chains t-* batched (forward + backward)", src.estimate_many)
    tracker._chains = clock.wrap("chain bookkeeping (chain(), gather)", tracker._chains)
    tracker._own_motion = clock.wrap("own motion + leaving-image test", tracker._own_motion)
    if tracker.chain_filter is not None:
        tracker.chain_filter.filter = clock.wrap("chain filter (descriptor similarity)", tracker.chain_filter.filter)
    if tracker.observer is not None:
        tracker.observer.observe = clock.wrap("observer (re-localisation)", tracker.observer.observe)
    tracker._place_hidden_points = clock.wrap("hidden-point step", tracker._place_hidden_points)
    tracker.state = clock.wrap("state build (TrackState)", tracker.state)


def _stage_order(name: str) -> tuple[int, int]:
    """Chains of one source together, shortest interval first; other stages in first-run order."""
    if " chain t-" in name:
        return (1, int(name.split(" chain t-")[1].split(" ")[0]))
    if " chains t-* batched" in name:
        return (1, 0)
    return (0 if name in ("frame push (validate, copy)", "grey conversion") or "on_frame" in name else 2, 0)


def profile_tracker(tracker: Any, frames: list[np.ndarray], num_points: int, warmup: int = 3) -> StageProfile:
    """Step ``tracker`` (a fresh ProbabilisticTracker) over ``frames`` with a grid of ``num_points``
    placed on ``frames[0]``; time every stage of the frames after ``warmup``."""

    h, w = frames[0].shape[:2]
    tracker.step(frames[0])
    tracker.add_queries(first_grid_points(w, h, num_points))
    clock = _StageClock()
    _instrument(tracker, clock)
    step = clock.wrap("step", tracker.step)
    step_wall = step_cpu = 0.0
    with _patched(tracker_module, "integrate", clock.wrap("fusion (integrate)", tracker_module.integrate)), \
            _patched(tracker_module, "predicted_positions",
                     clock.wrap("observer (re-localisation)", tracker_module.predicted_positions)):
        for i, frame in enumerate(frames[1:]):
            if i == warmup:  # drop the warm-up frames' times
                clock.reset()
            t0, c0 = time.perf_counter(), time.process_time()
            step(frame)
            if i >= warmup:
                step_wall += time.perf_counter() - t0
                step_cpu += time.process_time() - c0
    n = max(len(frames) - 1 - warmup, 1)
    for clocks in (clock.total, clock.cpu):
        clocks.pop("step", None)  # the step's own glue: reported as untimed
    order = sorted(clock.total, key=_stage_order)
    return StageProfile({k: clock.total[k] * 1e3 / n for k in order}, {k: clock.cpu[k] * 1e3 / n for k in order},
                        step_wall * 1e3 / n, step_cpu * 1e3 / n, n, num_points)


def lk_pyramid_share(frames: list[np.ndarray], num_points: int, params: dict, repeats: int = 10) -> dict[str, float]:
    """ms of one forward + backward LK pass between two frames with ``num_points`` points and
    with one point (the latter is about the pyramids built inside the two OpenCV calls); where the
    batched kernel is built, also the same pass with it on pyramids built beforehand (on all cores
    and on one thread) and the ms to build one frame's pyramid for it."""
    import cv2

    from ..motion.lk_native import LKSettings, default_threads, forward_backward_many, load_library
    from ..motion.lk_pyramid import build_pyramid

    a = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(frames[1], cv2.COLOR_RGB2GRAY)
    h, w = a.shape
    pts = first_grid_points(w, h, num_points)

    def median_ms(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return float(np.median(times))

    out = {"all_points_ms": median_ms(lambda: lk_forward_backward(a, b, pts, params)),
           "one_point_ms": median_ms(lambda: lk_forward_backward(a, b, pts[:1], params))}
    if load_library() is not None:
        window, levels = params["winSize"][0], params["maxLevel"]
        crit = params["criteria"]
        settings = LKSettings(window, crit[1], crit[2], params["minEigThreshold"])
        pa, pb = build_pyramid(a, window, levels), build_pyramid(b, window, levels)
        out["kernel_all_points_ms"] = median_ms(lambda: forward_backward_many([(pa, pb, pts)], settings,
                                                                              default_threads()))
        out["kernel_one_thread_ms"] = median_ms(lambda: forward_backward_many([(pa, pb, pts)], settings, 1))
        out["pyramid_build_ms"] = median_ms(lambda: build_pyramid(a, window, levels))
    return out
