"""The heavy stages' schedule (tracking/schedule.py): fixed strides, the time budget, the tracker's use."""

import numpy as np
import pytest

from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.evaluation.runner import evaluate_badja
from gs_tracker_ros.evaluation.synthetic_gt import scene_sequence
from gs_tracker_ros.methods import make_tracker
from gs_tracker_ros.motion.base import MotionEstimate, MotionSource
from gs_tracker_ros.synthetic import SceneConfig, make_scene
from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.tracking.schedule import ScheduleConfig, StageSchedule
from gs_tracker_ros.tracking.tracker import ProbabilisticTracker


def test_fixed_stride_runs_short_chains_every_frame_and_the_rest_every_stride():
    s = StageSchedule(ScheduleConfig(stride=2, scheduled_from=4))
    runs = {k: [t for t in range(8) if s.runs_chain(t, k)] for k in (1, 2, 4, 8)}
    assert runs[1] == runs[2] == list(range(8))
    assert runs[4] == runs[8] == [0, 2, 4, 6]
    assert [t for t in range(12) if s.due(t, period=3)] == [0, 6]  # relocalize.every=3 at stride 2
    s.update(1e6)  # no budget: a slow step changes nothing
    assert s.stride == 2


def test_budget_doubles_the_stride_while_over_and_halves_it_once_well_under():
    cfg = ScheduleConfig(frame_budget_ms=20.0, max_stride=4, ema_frames=4)
    s = StageSchedule(cfg)
    for _ in range(40):
        s.update(30.0)
    assert s.stride == 4  # capped at max_stride
    for _ in range(40):
        s.update(15.0)  # under the budget but above relax * budget = 12: keep
    assert s.stride == 4
    for _ in range(40):
        s.update(5.0)
    assert s.stride == 1  # never below ScheduleConfig.stride
    cfg.frame_budget_ms = 0.0  # switched off while running (a node parameter): back to the fixed stride
    cfg.stride = 2
    s.update(100.0)
    assert s.stride == 2


@pytest.mark.parametrize("key, value, needle", [
    ("frame_budget_ms", -1.0, "schedule.frame_budget_ms"),
    ("stride", 0, "schedule.stride"),
    ("max_stride", 0, "schedule.max_stride"),
    ("relax", 0.0, "schedule.relax"),
])
def test_out_of_range_settings_are_rejected_by_name(key, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        TrackerConfig().replace(**{f"schedule.{key}": value})


class CountingShift(MotionSource):
    """Every point moves +1 px in x per frame; counts the calls per interval."""

    def __init__(self):
        self.calls: dict[int, list[int]] = {}

    def estimate(self, buffer, a, b, points):
        self.calls.setdefault(b - a, []).append(b)
        k = len(points)
        return MotionEstimate(np.tile([[float(b - a), 0.0]], (k, 1)).astype(np.float32),
                              np.full(k, 0.25, np.float32), np.ones(k, bool))


def _run(config: TrackerConfig, frames: int = 9):
    source = CountingShift()
    tracker = ProbabilisticTracker(config, [source])
    img = np.full((48, 64, 3), 128, np.uint8)
    tracker.step(img)
    tracker.add_queries(np.array([[10.0, 20.0], [30.0, 20.0]]))
    for _ in range(frames - 1):
        state = tracker.step(img)
    return tracker, source, state


def test_the_tracker_skips_the_scheduled_chains_and_keeps_tracking():
    cfg = TrackerConfig().replace(**{"schedule.stride": 2})
    _, source, state = _run(cfg)
    assert source.calls[1] == list(range(1, 9))
    assert source.calls[2] == list(range(2, 9))
    assert source.calls[4] == [4, 6, 8] and source.calls[8] == [8]
    np.testing.assert_allclose(state.xy, [[18.0, 20.0], [38.0, 20.0]], atol=1e-4)  # 8 frames x 1 px
    assert state.visible.all()
    _, every, _ = _run(TrackerConfig())
    assert every.calls[4] == [4, 5, 6, 7, 8]


def test_a_budget_the_tracker_cannot_meet_raises_its_stride_to_the_cap():
    cfg = TrackerConfig().replace(**{"schedule.frame_budget_ms": 1e-6, "schedule.max_stride": 4,
                                     "schedule.ema_frames": 2})
    tracker, source, _ = _run(cfg, frames=30)
    assert tracker.schedule.stride == 4 and tracker.schedule.mean_ms > 0
    assert len(source.calls[8]) < len(source.calls[1]) / 2  # the long chains ran on fewer frames
    tracker.reset()
    assert tracker.schedule.stride == 1


def test_probfuse_at_stride_two_still_tracks_a_generated_scene():
    scene = make_scene(SceneConfig(width=320, height=192, num_frames=48, seed=5))
    seq = scene_sequence(scene, num_points=96, seed=1)
    scores = {stride: evaluate_badja(lambda s=stride: make_tracker("probfuse", TrackerConfig().replace(
        **{"schedule.stride": s})), [seq], progress=False)["overall"] for stride in (1, 2)}
    # the same bar as test_tracker's fusion test, and close to every-frame chains
    assert scores[2]["delta_avg"] > 0.6 and scores[2]["delta_avg"] > scores[1]["delta_avg"] - 0.05, scores
